/**
 * An LZ4 frame decoder (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), because
 * apt stores its lists as `.lz4` and npm has no small, maintained pure-JS decoder. The format
 * is simple; every length and offset is bounds-checked, since a list file is outside input.
 * A damaged or truncated frame yields the bytes decoded before the damage plus an error, so
 * that the caller can use the complete records and report where the rest was lost.
 */
import { xxh32 } from './xxh32.js';

const FRAME_MAGIC = 0x184d2204;
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

export interface Decoded {
  data: Buffer;
  /** why decoding stopped early, with the byte offset in the compressed input */
  error?: { offset: number; message: string };
}

class Out {
  buf: Buffer;
  len = 0;
  constructor(
    initial: number,
    readonly limit: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, Math.min(initial, limit)));
  }
  reserve(n: number): void {
    const need = this.len + n;
    if (need > this.limit) throw new RangeError(`decompressed data exceed the limit of ${this.limit} bytes`);
    if (need <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.min(this.limit, Math.max(need, this.buf.length * 2)));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

/** One compressed block into `out`; matches may reach back into earlier blocks (linked blocks). */
function decodeBlock(src: Buffer, start: number, end: number, out: Out, blockMax: number): void {
  const blockStart = out.len;
  const cap = Math.min(blockMax, out.limit - blockStart);
  out.reserve(cap);
  const dst = out.buf;
  const tooLong = () => new RangeError(cap < blockMax ? `decompressed data exceed the limit of ${out.limit} bytes` : 'block decodes to more than its maximum size');
  let ip = start;
  let op = out.len;
  for (;;) {
    if (ip >= end) throw new RangeError('block ends inside a sequence');
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) throw new RangeError('block ends inside a literal length');
        b = src[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end) throw new RangeError('literals run past the end of the block');
    if (op + lit - blockStart > cap) throw tooLong();
    src.copy(dst, op, ip, ip + lit);
    ip += lit;
    op += lit;
    if (ip === end) break; // the last sequence has literals only
    if (ip + 2 > end) throw new RangeError('block ends inside a match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new RangeError(`match offset ${offset} points before the start of the data`);
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (ip >= end) throw new RangeError('block ends inside a match length');
        b = src[ip++]!;
        len += b;
      } while (b === 255);
    }
    if (op + len - blockStart > cap) throw tooLong();
    let from = op - offset;
    if (offset >= len) {
      dst.copy(dst, op, from, from + len);
      op += len;
    } else {
      // overlapping copy: byte by byte repeats the pattern, as the format intends
      for (let k = 0; k < len; k++) dst[op++] = dst[from++]!;
    }
  }
  out.len = op;
}

/** Decodes concatenated LZ4 frames (and skips skippable frames). */
export function lz4Decode(src: Buffer, limit = 1 << 30): Decoded {
  const out = new Out(src.length * 3, limit);
  let p = 0;
  const fail = (message: string): Decoded => ({ data: out.buf.subarray(0, out.len), error: { offset: p, message } });
  try {
    let frames = 0;
    while (p < src.length) {
      if (p + 4 > src.length) return fail('truncated: ends inside a frame header');
      const magic = src.readUInt32LE(p);
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        if (p + 8 > src.length) return fail('truncated: ends inside a skippable frame');
        p += 8 + src.readUInt32LE(p + 4);
        continue;
      }
      if (magic !== FRAME_MAGIC) return fail(frames === 0 ? 'not an LZ4 frame (bad magic number)' : 'garbage after the last LZ4 frame');
      frames++;
      const hdr = p + 4;
      if (hdr + 3 > src.length) return fail('truncated: ends inside a frame descriptor');
      const flg = src[hdr]!;
      const bd = src[hdr + 1]!;
      if (flg >>> 6 !== 1) return fail(`unsupported LZ4 frame version ${flg >>> 6}`);
      if (flg & 0x02 || bd & 0x8f) return fail('reserved bits set in the frame descriptor');
      const blockMax = BLOCK_MAX[(bd >>> 4) & 7]!;
      if (blockMax === 0) return fail('invalid maximum block size');
      const blockSum = (flg & 0x10) !== 0;
      const contentSum = (flg & 0x04) !== 0;
      if (flg & 0x01) return fail('LZ4 frames with a dictionary are not supported');
      const descLen = 2 + (flg & 0x08 ? 8 : 0);
      if (hdr + descLen + 1 > src.length) return fail('truncated: ends inside a frame descriptor');
      const hc = (xxh32(src, hdr, hdr + descLen) >>> 8) & 0xff;
      if (hc !== src[hdr + descLen]) return fail('frame descriptor checksum mismatch');
      p = hdr + descLen + 1;
      const frameStart = out.len;
      for (;;) {
        if (p + 4 > src.length) return fail('truncated: the frame has no end mark');
        const word = src.readUInt32LE(p);
        p += 4;
        if (word === 0) break;
        const size = word & 0x7fffffff;
        if (size > blockMax) return fail(`block of ${size} bytes exceeds the frame's maximum of ${blockMax}`);
        if (p + size + (blockSum ? 4 : 0) > src.length) return fail('truncated: ends inside a block');
        if (blockSum && xxh32(src, p, p + size) !== src.readUInt32LE(p + size)) return fail('block checksum mismatch');
        if (word & 0x80000000) {
          out.reserve(size);
          src.copy(out.buf, out.len, p, p + size);
          out.len += size;
        } else {
          try {
            decodeBlock(src, p, p + size, out, blockMax);
          } catch (err) {
            return fail(`corrupt block: ${(err as Error).message}`);
          }
        }
        p += size + (blockSum ? 4 : 0);
      }
      if (contentSum) {
        if (p + 4 > src.length) return fail('truncated: ends before the content checksum');
        if (xxh32(out.buf, frameStart, out.len) !== src.readUInt32LE(p)) return fail('content checksum mismatch');
        p += 4;
      }
    }
    if (frames === 0) return fail('not an LZ4 frame (empty input)');
    return { data: out.buf.subarray(0, out.len) };
  } catch (err) {
    return fail((err as Error).message);
  }
}
