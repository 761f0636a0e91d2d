import { C_ID_END, C_ID_START, C_STRINGS, ROW_WIDTH, type FlatEvent } from './flat-event.js';

/**
 * Slots of FlatEvents in shared memory, so a reader thread can hand decoded events to the
 * aggregating thread without copying or cloning them: each slot holds up to `slotEvents` rows and
 * the bytes of their ids; the rare strings (cause, error, run) travel with the message that says
 * a slot is full. Shared rather than transferred buffers: transferring detaches an ArrayBuffer,
 * and once any buffer has been detached V8 checks for it on every typed-array access after.
 */
export interface SharedBatches {
  slots: number;
  slotEvents: number;
  /** slots × slotEvents rows of ROW_WIDTH. */
  rows: SharedArrayBuffer;
  /** slots × SLOT_ID_BYTES bytes of ids. */
  ids: SharedArrayBuffer;
  /** Int32 per slot: 1 while filled and not yet consumed. */
  busy: SharedArrayBuffer;
}

/** Room for ids per slot: any one id fits (an input line is at most 1 MiB). */
export const SLOT_ID_BYTES = (1 << 20) + (1 << 16);

export function newSharedBatches(slots: number, slotEvents: number): SharedBatches {
  return {
    slots,
    slotEvents,
    rows: new SharedArrayBuffer(slots * slotEvents * ROW_WIDTH * 8),
    ids: new SharedArrayBuffer(slots * SLOT_ID_BYTES),
    busy: new SharedArrayBuffer(slots * 4),
  };
}

/** The producer's side: fills one slot at a time. */
export class BatchWriter {
  private readonly rows: Float64Array;
  private readonly ids: Uint8Array;
  private readonly busy: Int32Array;
  slot = 0;
  count = 0;
  private idLen = 0;
  strings: string[] = [];

  constructor(private readonly shared: SharedBatches) {
    this.rows = new Float64Array(shared.rows);
    this.ids = new Uint8Array(shared.ids);
    this.busy = new Int32Array(shared.busy);
  }

  /** True when `ev` fits the current slot (else send it and move on first). */
  fits(ev: FlatEvent): boolean {
    if (this.count === this.shared.slotEvents) return false;
    const idStart = ev.rows[ev.base + C_ID_START]!;
    return idStart < 0 || this.idLen + (ev.rows[ev.base + C_ID_END]! - idStart) <= SLOT_ID_BYTES;
  }

  /** Block until the current slot is free to fill (the consumer frees slots as it reads them). */
  waitFree(): void {
    for (let v = Atomics.load(this.busy, this.slot); v !== 0; v = Atomics.load(this.busy, this.slot)) Atomics.wait(this.busy, this.slot, v);
  }

  /** Append a copy of `ev`; the caller checked fits(). */
  add(ev: FlatEvent): void {
    const src = ev.rows;
    const from = ev.base;
    const rows = this.rows;
    const at = (this.slot * this.shared.slotEvents + this.count++) * ROW_WIDTH;
    for (let c = 0; c < ROW_WIDTH; c++) rows[at + c] = src[from + c]!;
    const idStart = src[from + C_ID_START]!;
    if (idStart >= 0) {
      const len = src[from + C_ID_END]! - idStart;
      const to = this.slot * SLOT_ID_BYTES + this.idLen;
      const bytes = this.ids;
      const idBuf = ev.idBuf;
      for (let i = 0; i < len; i++) bytes[to + i] = idBuf[idStart + i]!;
      rows[at + C_ID_START] = to;
      rows[at + C_ID_END] = to + len;
      this.idLen += len;
    }
    const s = src[from + C_STRINGS]!;
    if (s >= 0) {
      rows[at + C_STRINGS] = this.strings.length;
      this.strings.push(ev.strings[s]!, ev.strings[s + 1]!, ev.strings[s + 2]!);
    }
  }

  /** Mark the current slot filled and move to the next; returns what the consumer needs to read it. */
  seal(): { slot: number; count: number; strings: string[] } {
    const sealed = { slot: this.slot, count: this.count, strings: this.strings };
    Atomics.store(this.busy, this.slot, 1);
    this.slot = (this.slot + 1) % this.shared.slots;
    this.count = 0;
    this.idLen = 0;
    this.strings = [];
    return sealed;
  }
}

/** The consumer's side: views a sealed slot's events and frees the slot. */
export class BatchReader {
  private readonly rows: Float64Array;
  private readonly ids: Uint8Array;
  private readonly busy: Int32Array;

  constructor(private readonly shared: SharedBatches) {
    this.rows = new Float64Array(shared.rows);
    this.ids = new Uint8Array(shared.ids);
    this.busy = new Int32Array(shared.busy);
  }

  /** Point `ev` at event `i` of `slot` (valid until the slot is freed). */
  view(slot: number, i: number, strings: string[], ev: FlatEvent): void {
    ev.rows = this.rows;
    ev.base = (slot * this.shared.slotEvents + i) * ROW_WIDTH;
    ev.strings = strings;
    ev.idBuf = this.ids;
  }

  free(slot: number): void {
    Atomics.store(this.busy, slot, 0);
    Atomics.notify(this.busy, slot);
  }
}
