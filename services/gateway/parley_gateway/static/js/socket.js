// WebSocket connection to /api/v1/ws with auth frame, keep-alive and exponential backoff.

const PING_MS = 25000;
const STALE_MS = 70000;
const MAX_BACKOFF_MS = 30000;

export class ChatSocket {
  /**
   * @param {{getToken: () => string, onFrame: (f: object) => void,
   *          onReady: (f: object) => void, onStatus: (s: string, info?: object) => void,
   *          onAuthLost: (code: number) => void}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.ws = null;
    this.ready = false;
    this.stopped = true;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
    this.onOnline = () => this.retryNow();
    this.onVisible = () => { if (document.visibilityState === 'visible') this.retryNow(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) { try { ws.close(1000, 'bye'); } catch { /* ignore */ } }
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.stopped || this.ws) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    } catch {
      this.scheduleReconnect(0);
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.hooks.onStatus('connecting');
    ws.addEventListener('open', () => {
      this.lastFrameAt = Date.now();
      ws.send(JSON.stringify({ type: 'auth', token: this.hooks.getToken() }));
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      if (!f || typeof f.type !== 'string') return;
      if (f.type === 'pong') return;
      if (f.type === 'ready') {
        this.ready = true;
        this.attempt = 0;
        this.startPing();
        this.hooks.onStatus('online');
        this.hooks.onReady(f);
        return;
      }
      this.hooks.onFrame(f);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      clearInterval(this.pingTimer);
      if (this.stopped) return;
      if (ev.code === 4401 || ev.code === 4001) {
        this.stop();
        this.hooks.onAuthLost(ev.code);
        return;
      }
      this.scheduleReconnect(ev.code);
    });
    // 'error' is always followed by 'close'; nothing to do here.
  }

  startPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (!this.ws || !this.ready) return;
      if (Date.now() - this.lastFrameAt > STALE_MS) {
        // Half-open connection: drop it and reconnect.
        const ws = this.ws;
        try { ws.close(4000, 'stale'); } catch { /* ignore */ }
        return;
      }
      this.send({ type: 'ping' });
    }, PING_MS);
  }

  scheduleReconnect(code) {
    if (this.stopped || this.retryTimer) return;
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    // Full jitter on the upper half so a drained gateway's clients spread out.
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempt += 1;
    this.hooks.onStatus('offline', { retryIn: delay, code });
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.connect(); }, delay);
  }

  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  /** Send a frame if the socket is authenticated; returns false otherwise. */
  send(frame) {
    if (!this.ws || !this.ready || this.ws.readyState !== WebSocket.OPEN) return false;
    try { this.ws.send(JSON.stringify(frame)); return true; } catch { return false; }
  }
}
