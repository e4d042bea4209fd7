// Audio worklets of the browser client: microphone capture and reply playback, on the audio rendering thread.

// Microphone: float samples -> PCM16 chunks of `chunk` samples, posted with their peak level.
class MicCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = options.processorOptions.chunk;
    this.buf = new Int16Array(this.chunk);
    this.n = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      for (let i = 0; i < channel.length; i++) {
        const v = Math.max(-1, Math.min(1, channel[i]));
        this.peak = Math.max(this.peak, Math.abs(v));
        this.buf[this.n++] = v < 0 ? v * 32768 : v * 32767;
        if (this.n === this.chunk) {
          this.port.postMessage({ pcm: this.buf.buffer, peak: this.peak }, [this.buf.buffer]);
          this.buf = new Int16Array(this.chunk);
          this.n = 0;
          this.peak = 0;
        }
      }
    }
    return true;
  }
}

// Reply playback: a jitter buffer. Waits for `prebuffer` samples before starting (and after running dry mid-item),
// plays an item's end without waiting, and counts per item the samples it really played (for barge-in truncation).
class ReplyPlayer extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // {item, data: Float32Array, offset}
    this.ended = new Set();
    this.buffered = 0;
    this.waiting = true;
    this.current = null;
    this.played = {};
    this.prebuffer = Math.round(sampleRate * 0.06);
    this.sinceReport = 0;
    this.port.onmessage = (e) => this.command(e.data);
  }

  command(msg) {
    if (msg.type === "push") {
      const pcm = new Int16Array(msg.pcm);
      const data = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
      this.queue.push({ item: msg.item, data, offset: 0 });
      this.buffered += data.length;
    } else if (msg.type === "end") {
      this.ended.add(msg.item);
    } else if (msg.type === "clear") {
      let item = null;
      if (this.queue.length) item = this.queue[0].item;
      else if (this.current !== null && !this.ended.has(this.current)) item = this.current;
      this.queue = [];
      this.buffered = 0;
      this.waiting = true;
      if (item !== null) this.ended.add(item);
      this.port.postMessage({ type: "cleared", item, samples: item === null ? 0 : this.played[item] || 0 });
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    if (this.waiting) {
      const tailEnded = this.queue.length && this.ended.has(this.queue[this.queue.length - 1].item);
      if (this.buffered < this.prebuffer && !tailEnded) return true;
      this.waiting = false;
    }
    let filled = 0;
    while (filled < out.length && this.queue.length) {
      const chunk = this.queue[0];
      const take = Math.min(out.length - filled, chunk.data.length - chunk.offset);
      out.set(chunk.data.subarray(chunk.offset, chunk.offset + take), filled);
      if (!(chunk.item in this.played)) {
        this.played[chunk.item] = 0;
        this.port.postMessage({ type: "started", item: chunk.item });
      }
      this.played[chunk.item] += take;
      this.current = chunk.item;
      chunk.offset += take;
      filled += take;
      this.buffered -= take;
      if (chunk.offset === chunk.data.length) this.queue.shift();
    }
    if (filled < out.length && !this.queue.length) {
      if (this.current !== null && this.ended.has(this.current) && this.played[this.current] !== undefined) {
        this.port.postMessage({ type: "finished", item: this.current, samples: this.played[this.current] });
        this.current = null;
      }
      this.waiting = true;
    }
    this.sinceReport += out.length;
    if (this.sinceReport >= sampleRate / 10) {
      this.sinceReport = 0;
      this.port.postMessage({ type: "played", played: { ...this.played } });
    }
    return true;
  }
}

registerProcessor("mic-capture", MicCapture);
registerProcessor("reply-player", ReplyPlayer);
