"""The slice of RunPod's GraphQL schema that the ``runpod`` SDK (1.12) uses for GPUs and pods.

Field names and types follow RunPod's public schema; every field the SDK's query text selects is here, so graphql-core
parses and validates the SDK's real requests (a broken inline string fails here as it would on RunPod).
"""

SCHEMA_SDL = """
scalar Void

enum CloudTypeEnum { ALL SECURE COMMUNITY }
enum PodStatus { CREATED RUNNING RESTARTING EXITED PAUSED DEAD TERMINATED }

input GpuTypeFilter { id: String ids: [String] }
input GpuLowestPriceInput { gpuCount: Int dataCenterId: String minDisk: Int minMemoryInGb: Int minVcpuCount: Int
  secureCloud: Boolean supportPublicIp: Boolean }
input PodFilter { podId: String! }
input EnvironmentVariableInput { key: String! value: String! }
input PodFindAndDeployOnDemandInput {
  name: String imageName: String cloudType: CloudTypeEnum startSsh: Boolean startJupyter: Boolean
  gpuTypeId: String supportPublicIp: Boolean gpuCount: Int volumeInGb: Int minVcpuCount: Int minMemoryInGb: Int
  allowedCudaVersions: [String] dataCenterId: String dockerArgs: String countryCode: String containerDiskInGb: Int
  ports: String volumeMountPath: String env: [EnvironmentVariableInput] templateId: String networkVolumeId: String
  minDownload: Int minUpload: Int
}

type LowestPrice { gpuName: String gpuTypeId: String minimumBidPrice: Float uninterruptablePrice: Float
  minMemory: Int minVcpu: Int }

type GpuType {
  id: String displayName: String manufacturer: String memoryInGb: Int cudaCores: Int maxGpuCount: Int
  secureCloud: Boolean communityCloud: Boolean securePrice: Float communityPrice: Float
  oneMonthPrice: Float threeMonthPrice: Float oneWeekPrice: Float communitySpotPrice: Float secureSpotPrice: Float
  lowestPrice(input: GpuLowestPriceInput): LowestPrice
}

type PodRuntimePorts { ip: String isIpPublic: Boolean privatePort: Int publicPort: Int type: String }
type PodRuntime { uptimeInSeconds: Int ports: [PodRuntimePorts] }
type PodMachineInfo { podHostId: String gpuDisplayName: String }

type Pod {
  id: String! name: String imageName: String desiredStatus: PodStatus costPerHr: Float gpuCount: Int
  containerDiskInGb: Int volumeInGb: Int volumeMountPath: String dockerArgs: String dockerId: String env: [String]
  lastStatusChange: String machineId: String memoryInGb: Float vcpuCount: Float podType: String
  port: Int ports: String uptimeSeconds: Int runtime: PodRuntime machine: PodMachineInfo
}

type User { id: String pods: [Pod] }

type Query {
  gpuTypes(input: GpuTypeFilter): [GpuType]
  pod(input: PodFilter): Pod
  myself: User
}

type Mutation {
  podFindAndDeployOnDemand(input: PodFindAndDeployOnDemandInput): Pod
  podTerminate(input: PodFilter): Void
}
"""
