// s2s browser client: the microphone through an AudioWorklet, OpenAI Realtime events over the gateway's WebSocket,
// the reply through a playback worklet. Hands-free (server VAD, barge-in) or push-to-talk (manual turns).
// Everything a test needs to check is kept in `window.s2s` (the page's own state).

const RATE = 48000; // both directions; the gateway takes 48 kHz PCM16, so nothing is resampled here
const BACKOFF_MS = [250, 500, 1000, 2000];

const $ = (id) => document.getElementById(id);
const state = (window.s2s = {
  status: "idle", mode: "hands-free", connected: false, reconnects: 0, micChunks: 0, lastVoiceAt: null,
  transcript: [], // {role, text, status?, latencyMs?}
  turns: [], // {latencyMs}
  played: {}, // item id -> samples the speaker really played
  received: {}, // item id -> samples received
  errors: [],
});

let ws = null, ctx = null, mic = null, player = null;
let token = "", everOpened = false, attempt = 0;
let talking = false, voiceEnd = null, lastVoiceAt = null;
let userLine = null, replyLine = null, replyItem = null, responseActive = false;
const interrupted = new Set();
const pendingTruncate = [];

function setStatus(text, kind = "") {
  state.status = text;
  $("status").textContent = text;
  $("status").className = "pill " + kind;
}

function line(role, text) {
  const div = document.createElement("div");
  div.className = "line " + role;
  div.innerHTML = `<span class="who"></span><span class="text"></span><span class="meta"></span>`;
  div.querySelector(".who").textContent = role === "user" ? "you" : "assistant";
  div.querySelector(".text").textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

function send(event) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(event));
}

function b64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function unb64(text) {
  const s = atob(text);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes.buffer;
}

// ---------------------------------------------------------------- audio

async function startAudio() {
  ctx = new AudioContext({ sampleRate: RATE, latencyHint: "interactive" });
  await ctx.audioWorklet.addModule("/web/worklets.js");
  // Echo cancellation unless the user wears headphones: without it the assistant hears itself and interrupts itself.
  // It costs recognition accuracy (espeak's "capital of France" was heard right 1 time in 3 with it, 3 in 3 without),
  // so headphones turn it off. Gain control and noise suppression stay off: Whisper does better on the raw voice.
  const echoCancellation = !$("headphones").checked;
  state.echoCancellation = echoCancellation;
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation, noiseSuppression: false, autoGainControl: false },
  });
  mic = new AudioWorkletNode(ctx, "mic-capture", { processorOptions: { chunk: RATE / 25 } }); // 40 ms
  ctx.createMediaStreamSource(stream).connect(mic);
  const mute = ctx.createGain();
  mute.gain.value = 0; // keeps the capture node pulled by the graph without playing the mic back
  mic.connect(mute).connect(ctx.destination);
  mic.port.onmessage = (e) => onMic(e.data);
  player = new AudioWorkletNode(ctx, "reply-player", { outputChannelCount: [1] });
  player.connect(ctx.destination);
  player.port.onmessage = (e) => onPlayer(e.data);
  await ctx.resume();
}

function onMic({ pcm, peak }) {
  state.micChunks++;
  $("level").style.width = Math.min(100, Math.round(peak * 200)) + "%";
  if (peak > 0.02) lastVoiceAt = state.lastVoiceAt = performance.now();
  if (state.mode === "hands-free" || talking) send({ type: "input_audio_buffer.append", audio: b64(pcm) });
}

function onPlayer(msg) {
  if (msg.type === "played") Object.assign(state.played, msg.played);
  else if (msg.type === "started") replyStarted(msg.item);
  else if (msg.type === "finished") {
    state.played[msg.item] = msg.samples;
    if (!responseActive) setStatus(state.mode === "hands-free" ? "listening" : "hold to talk", "ok");
  } else if (msg.type === "cleared" && msg.item) {
    state.played[msg.item] = msg.samples;
    const audioEndMs = Math.round((msg.samples / RATE) * 1000);
    send({ type: "conversation.item.truncate", item_id: msg.item, content_index: 0, audio_end_ms: audioEndMs });
    const entry = pendingTruncate.shift();
    if (entry) entry.querySelector(".meta").textContent = `interrupted after ${(audioEndMs / 1000).toFixed(1)} s`;
  }
}

function replyStarted(item) {
  setStatus("assistant speaking", "busy");
  if (voiceEnd === null) return;
  const outputMs = ((ctx.outputLatency || 0) + (ctx.baseLatency || 0)) * 1000;
  const latencyMs = Math.round(performance.now() + outputMs - voiceEnd);
  voiceEnd = null;
  state.turns.push({ item, latencyMs });
  $("latency").textContent = `${latencyMs} ms`;
  if (replyLine) replyLine.querySelector(".meta").textContent = `${latencyMs} ms`;
  const entry = state.transcript.find((t) => t.item === item);
  if (entry) entry.latencyMs = latencyMs;
}

function stopPlayback() {
  if (replyLine && replyItem && !interrupted.has(replyItem)) pendingTruncate.push(replyLine);
  if (replyItem) interrupted.add(replyItem);
  player.port.postMessage({ type: "clear" }); // answers "cleared" with what was played -> truncate
}

// ---------------------------------------------------------------- the connection

function sessionUpdate() {
  const turnDetection = state.mode === "hands-free" ? { type: "server_vad" } : null;
  send({
    type: "session.update",
    session: {
      type: "realtime",
      audio: {
        input: { format: { type: "audio/pcm", rate: RATE }, turn_detection: turnDetection },
        output: { format: { type: "audio/pcm", rate: RATE } },
      },
    },
  });
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/realtime";
  setStatus(attempt ? `reconnecting (attempt ${attempt})…` : "connecting…", "busy");
  ws = token ? new WebSocket(url, ["openai-insecure-api-key." + token]) : new WebSocket(url);
  ws.onopen = () => {
    everOpened = true;
    if (attempt) state.reconnects++;
    attempt = 0;
    state.connected = true;
    sessionUpdate();
    // A new session after a drop: restore the conversation so far, so the assistant still knows it.
    for (const t of state.transcript.slice(-24)) {
      const kind = t.role === "assistant" ? "output_text" : "input_text";
      send({ type: "conversation.item.create", item: { type: "message", role: t.role, content: [{ type: kind, text: t.text }] } });
    }
    setStatus(state.mode === "hands-free" ? "listening" : "hold to talk", "ok");
  };
  ws.onmessage = (e) => onEvent(JSON.parse(e.data));
  ws.onclose = () => {
    state.connected = false;
    if (!everOpened) { // refused before it ever opened: the token (a drop after opening reconnects)
      setStatus("the gateway refused the connection: check the token", "bad");
      $("token").classList.add("wanted");
      $("token").focus();
      $("connect").disabled = false;
      return;
    }
    player.port.postMessage({ type: "clear" });
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt++;
    setStatus(`connection lost; reconnecting in ${(delay / 1000).toFixed(1)} s`, "bad");
    setTimeout(connect, delay);
  };
}

function onEvent(e) {
  switch (e.type) {
    case "input_audio_buffer.speech_started":
      setStatus("you are speaking", "busy");
      if (state.mode === "hands-free") stopPlayback(); // barge-in: the gateway cancels, we go quiet now
      userLine = line("user", "…");
      break;
    case "conversation.item.input_audio_transcription.delta":
      if (!userLine) userLine = line("user", "");
      userLine.querySelector(".text").textContent = (userLine.dataset.text = (userLine.dataset.text || "") + e.delta);
      break;
    case "input_audio_buffer.speech_stopped":
      voiceEnd = lastVoiceAt;
      setStatus("thinking", "busy");
      break;
    case "conversation.item.input_audio_transcription.completed":
      if (!userLine) userLine = line("user", "");
      if (e.transcript) {
        userLine.querySelector(".text").textContent = e.transcript;
        state.transcript.push({ role: "user", text: e.transcript, item: e.item_id });
      } else userLine.remove();
      userLine = null;
      break;
    case "response.created":
      responseActive = true;
      replyItem = null;
      replyLine = line("assistant", "");
      break;
    case "response.output_audio_transcript.delta":
      if (interrupted.has(e.item_id) || !replyLine) break;
      replyItem = e.item_id;
      replyLine.querySelector(".text").textContent += e.delta;
      break;
    case "response.output_audio.delta": {
      if (interrupted.has(e.item_id)) break;
      replyItem = e.item_id;
      const pcm = unb64(e.delta);
      state.received[e.item_id] = (state.received[e.item_id] || 0) + pcm.byteLength / 2;
      player.port.postMessage({ type: "push", item: e.item_id, pcm }, [pcm]);
      break;
    }
    case "response.output_audio.done":
      player.port.postMessage({ type: "end", item: e.item_id });
      break;
    case "response.done": {
      responseActive = false;
      const out = (e.response.output || [])[0];
      const text = out && out.content && out.content[0] ? out.content[0].transcript : "";
      if (out) player.port.postMessage({ type: "end", item: out.id });
      if (replyLine) {
        if (text) replyLine.querySelector(".text").textContent = text;
        else if (!replyLine.querySelector(".text").textContent) replyLine.remove();
      }
      if (text) state.transcript.push({ role: "assistant", text, status: e.response.status, item: out.id });
      if (e.response.status !== "completed") setStatus(state.mode === "hands-free" ? "listening" : "hold to talk", "ok");
      break;
    }
    case "error":
      state.errors.push(e.error);
      line("error", `${e.error.code}: ${e.error.message}`);
      break;
  }
}

// ---------------------------------------------------------------- controls

async function start() {
  token = $("token").value.trim();
  $("connect").disabled = true;
  $("token").classList.remove("wanted");
  try {
    if (!ctx) await startAudio();
    $("headphones").disabled = true; // the microphone is open with its echo setting; a reload changes it
  } catch (err) {
    setStatus(`no microphone: ${err.message || err}`, "bad");
    $("connect").disabled = false;
    return;
  }
  everOpened = false;
  connect();
}

function setMode(mode) {
  state.mode = mode;
  $("ptt").hidden = mode !== "push-to-talk";
  if (state.connected) {
    sessionUpdate();
    setStatus(mode === "hands-free" ? "listening" : "hold to talk", "ok");
  }
}

function pttDown() {
  if (talking || !state.connected) return;
  talking = true;
  stopPlayback();
  if (responseActive) send({ type: "response.cancel" });
  userLine = line("user", "…");
  setStatus("you are speaking", "busy");
}

function pttUp() {
  if (!talking) return;
  talking = false;
  voiceEnd = performance.now();
  send({ type: "input_audio_buffer.commit" });
  send({ type: "response.create" });
  setStatus("thinking", "busy");
}

$("connect").addEventListener("click", start);
$("token").addEventListener("keydown", (e) => e.key === "Enter" && start());
for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", () => setMode(radio.value));
$("ptt").addEventListener("pointerdown", pttDown);
$("ptt").addEventListener("pointerup", pttUp);
$("ptt").addEventListener("pointerleave", pttUp);
document.addEventListener("keydown", (e) => e.code === "Space" && state.mode === "push-to-talk" && e.target.tagName !== "INPUT" && (e.preventDefault(), pttDown()));
document.addEventListener("keyup", (e) => e.code === "Space" && state.mode === "push-to-talk" && pttUp());
