/** The UTF-8 length of text, or a byte array's length. */
export function byteLengthOf(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.length;
}

/** Put text (as UTF-8) or bytes into `out` at `off`; returns the offset after them. */
export function putBytes(out: Buffer, data: string | Uint8Array, off: number): number {
  if (typeof data === 'string') return off + out.write(data, off);
  out.set(data, off);
  return off + data.length;
}
