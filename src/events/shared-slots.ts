import { C_ID_END, C_ID_START, ROW_WIDTH, type FlatEvent } from './flat-event.js';

/**
 * Slots of event rows in shared memory, so a reader thread can decode events straight into memory
 * the aggregating thread reads: each slot holds up to `slotEvents` consecutive events of one file
 * and the bytes of their ids; the rare strings (cause, error, run) travel with the message that
 * says a slot is filled. Shared rather than transferred buffers: a transfer detaches an
 * ArrayBuffer, and once any buffer has been detached V8 checks for it on every typed-array access.
 */
export interface SharedSlots {
  slots: number;
  slotEvents: number;
  /** Room for ids per slot. */
  idBytes: number;
  /** slots × slotEvents rows of ROW_WIDTH numbers. */
  rows: SharedArrayBuffer;
  /** slots × idBytes bytes of ids. */
  ids: SharedArrayBuffer;
}

/**
 * `idBytes` per slot defaults to 64 a slot event; a slot is sent early when its ids fill up, and an
 * id longer than a whole slot's room stops the reader (IdTooLongError: read in-process instead).
 */
export function newSharedSlots(slots: number, slotEvents: number, idBytes = slotEvents * 64): SharedSlots {
  return {
    slots,
    slotEvents,
    idBytes,
    rows: new SharedArrayBuffer(slots * slotEvents * ROW_WIDTH * 8),
    ids: new SharedArrayBuffer(slots * idBytes),
  };
}

/** Typed views of the slots, one set per thread. */
export class SlotViews {
  readonly rows: Float64Array;
  readonly ids: Uint8Array;

  constructor(readonly shared: SharedSlots) {
    this.rows = new Float64Array(shared.rows);
    this.ids = new Uint8Array(shared.ids);
  }

  /** Index of event `i`'s row in `rows`. */
  rowBase(slot: number, i: number): number {
    return (slot * this.shared.slotEvents + i) * ROW_WIDTH;
  }

  /**
   * Copy the id bytes `ev` points at into the slot, at `idLen` bytes in, and point `ev` there.
   * Returns the slot's new id length, or -1 when the id does not fit (the slot is full).
   */
  moveId(ev: FlatEvent, slot: number, idLen: number): number {
    const row = ev.rows;
    const at = ev.base;
    const start = row[at + C_ID_START]!;
    if (start < 0) return idLen;
    const len = row[at + C_ID_END]! - start;
    if (idLen + len > this.shared.idBytes) return -1;
    const to = slot * this.shared.idBytes + idLen;
    const ids = this.ids;
    const from = ev.idBuf;
    for (let i = 0; i < len; i++) ids[to + i] = from[start + i]!;
    row[at + C_ID_START] = to;
    row[at + C_ID_END] = to + len;
    return idLen + len;
  }

  /** Point `ev` at event `i` of `slot`. */
  view(ev: FlatEvent, slot: number, i: number, strings: string[]): void {
    ev.rows = this.rows;
    ev.base = this.rowBase(slot, i);
    ev.strings = strings;
    ev.idBuf = this.ids;
  }
}
