import { ByteBuilder } from '../../util/byte-builder.js';
import type { ResultLine } from '../output/result-sink.js';
import { encodeFacts, type ResultFacts } from './result-facts.js';

const NEWLINE = 0x0a;

/**
 * Results gathered for one entry of the run's stream: their lines as bytes in a buffer kept from batch
 * to batch (a result line is JSON, so it holds no newline to separate them by), their ids and facts.
 * A worker fills one while the previous one is on its way to Redis, then reuses it: the lines are
 * written once, as they come, and go to the socket from there (resp-connection.ts).
 */
export class ResultBatch {
  readonly ids: string[] = [];
  private readonly lines = new ByteBuilder(65_536);
  private readonly facts: ResultFacts[] = [];
  private allFacts = true;

  get size(): number {
    return this.ids.length;
  }

  add(id: string, line: ResultLine, facts?: ResultFacts): void {
    if (this.ids.length > 0) this.lines.appendByte(NEWLINE);
    this.lines.append(line);
    this.ids.push(id);
    if (facts === undefined) this.allFacts = false;
    else if (this.allFacts) this.facts.push(facts);
  }

  /**
   * The stream entry's fields: the ids as a JSON array, the lines joined by newlines (a view of this
   * batch's buffer: valid until `clear`), and the facts when every result has them.
   */
  fields(): (string | Uint8Array)[] {
    const out: (string | Uint8Array)[] = ['ids', JSON.stringify(this.ids), 'lines', this.lines.view()];
    if (this.allFacts) out.push('facts', encodeFacts(this.facts));
    return out;
  }

  clear(): void {
    this.ids.length = 0;
    this.lines.clear();
    this.facts.length = 0;
    this.allFacts = true;
  }
}
