/**
 * Writes to stdout in batches of about 64 KiB and waits when it is full:
 * a million small lines cost a few hundred writes, and memory holds one
 * batch whatever the consumer's speed. A closed pipe (`| head`) ends the
 * writing quietly instead of hanging on a drain that never comes.
 */
export class StdoutBatch {
  private parts: (string | Buffer)[] = [];
  private size = 0;
  private closed = false;
  private readonly onError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') this.closed = true;
  };

  constructor(private readonly limit = 1 << 16) {
    process.stdout.on('error', this.onError);
  }

  /** True once the reader went away; callers stop producing. */
  get gone(): boolean {
    return this.closed;
  }

  async write(part: string | Buffer): Promise<void> {
    this.parts.push(part);
    this.size += part.length;
    if (this.size >= this.limit) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0 || this.closed) return;
    // A single part (the export's 64 KiB batches) is written as it is, not copied.
    const only = this.parts.length === 1 ? this.parts[0] : undefined;
    const chunk = only ?? Buffer.concat(this.parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
    this.parts = [];
    this.size = 0;
    if (!process.stdout.write(chunk)) {
      await new Promise<void>((resolve) => {
        const settle = () => {
          process.stdout.off('drain', settle);
          process.stdout.off('error', settle);
          resolve();
        };
        process.stdout.on('drain', settle);
        process.stdout.on('error', settle);
      });
    }
  }

  async end(): Promise<void> {
    await this.flush();
    process.stdout.off('error', this.onError);
  }
}
