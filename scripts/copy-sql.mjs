// tsc does not copy non-TypeScript assets; the migrator reads its .sql files
// (numbered migrations, function and trigger files) next to its own compiled
// modules, so mirror them into dist/.
import { cpSync, mkdirSync, rmSync } from 'node:fs';

for (const dir of ['migrations', 'functions', 'triggers']) {
  const from = new URL(`../shared/db/${dir}/`, import.meta.url);
  const to = new URL(`../dist/shared/db/${dir}/`, import.meta.url);
  // A file removed from the source (squashed, renamed) must not linger in dist/.
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  cpSync(from, to, { recursive: true });
}
