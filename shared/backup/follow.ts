import type { FileHandle } from 'node:fs/promises';

/** How often a caught-up reader looks for more bytes; bounded by the writer's end. */
const POLL_MS = 20;
const CHUNK_BYTES = 1024 * 1024;

/**
 * Reads a file while another process appends to it, handing every byte to
 * onChunk exactly once and in order, until the writer has ended and the end of
 * the file is reached. The chunk buffer is reused: onChunk must copy what it
 * keeps. Memory stays at one chunk however large the file grows.
 */
export async function followFile(
  file: FileHandle,
  writerEnded: Promise<unknown>,
  onChunk: (chunk: Buffer) => void,
): Promise<number> {
  let ended = false;
  void writerEnded.then(
    () => (ended = true),
    () => (ended = true),
  );
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let position = 0;
  for (;;) {
    // Read the flag before reading the file: bytes written before the writer
    // ended are all visible to a read that starts after it ended.
    const wasEnded = ended;
    const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
    if (bytesRead > 0) {
      onChunk(buffer.subarray(0, bytesRead));
      position += bytesRead;
      continue;
    }
    if (wasEnded) return position;
    await Promise.race([writerEnded.catch(() => undefined), pause(POLL_MS)]);
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
