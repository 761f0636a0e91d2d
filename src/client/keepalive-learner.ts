/** Stale connections following streamed answers after which a host is taken to close them unannounced. */
const STALE_AFTER_STREAM = 2;

/**
 * Learns a host's keep-alive behaviour from the stale connections met on it. llama.cpp's
 * llama-server closes the TCP connection a few ms after every streamed answer while its headers say
 * `Keep-Alive: timeout=5, max=100`: after two stale connections that followed streamed answers,
 * connections are no longer reused after streamed answers (their requests ask for Connection: close).
 */
export class KeepAliveLearner {
  /** Stop reusing connections after streamed answers. */
  noReuseAfterStream = false;
  /** Stale connections met so far. */
  stale = 0;
  private staleAfterStream = 0;

  /** A stale connection was met. Returns true when this one taught that the host closes after streamed answers. */
  noteStale(afterStream: boolean): boolean {
    this.stale++;
    if (!afterStream || this.noReuseAfterStream || ++this.staleAfterStream < STALE_AFTER_STREAM) return false;
    this.noReuseAfterStream = true;
    return true;
  }

  /** Stale connections after streamed answers so far. */
  get staleAfterStreams(): number {
    return this.staleAfterStream;
  }
}
