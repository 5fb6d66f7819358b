/** A streamed response body, as the log lines of its job. */
import { cutLine } from '../core/context.js';

/**
 * Splits a streamed body into lines (`\n` or `\r\n`) and keeps only the first
 * `max` characters of each while it streams: a body without newlines (a blob,
 * minified JSON) must neither pile up in memory nor be re-scanned whole at
 * every chunk. A longer line reaches `emit` cut, with the marker counting
 * every character it had.
 */
export class LineCutter {
  private kept = '';
  private length = 0;
  private endsWithCR = false;

  constructor(
    private readonly max: number,
    private readonly emit: (line: string) => void,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (let newline = chunk.indexOf('\n'); newline !== -1; newline = chunk.indexOf('\n', start)) {
      this.take(chunk.slice(start, newline));
      this.flush();
      start = newline + 1;
    }
    this.take(chunk.slice(start));
  }

  /** The body ended: a last line without a newline is a line too. */
  end(): void {
    if (this.length > 0) this.flush();
  }

  private take(text: string): void {
    if (text === '') return;
    this.length += text.length;
    // One character more than fits, so a `\r` at exactly `max` can still be told from a longer line.
    if (this.kept.length <= this.max) this.kept += text.slice(0, this.max + 1 - this.kept.length);
    this.endsWithCR = text.endsWith('\r');
  }

  private flush(): void {
    let { kept, length } = this;
    if (this.endsWithCR) {
      length--;
      kept = kept.slice(0, length);
    }
    this.emit(cutLine(kept, this.max, length));
    this.kept = '';
    this.length = 0;
    this.endsWithCR = false;
  }
}
