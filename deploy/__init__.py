"""Deploy the whole stack on a RunPod GPU pod: ``python -m deploy up|down|status`` (``make deploy-runpod``)."""
