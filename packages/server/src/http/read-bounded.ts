/**
 * Reads a fetch() response body, stopping at `max` bytes: a hostile or mistaken server cannot
 * fill this process's memory. `tooLarge` says, in the caller's words, what it means.
 */
export async function readBounded(res: Response, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}
