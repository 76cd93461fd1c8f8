/**
 * The cycle check (npm run cycles, run by .ci/run): no import cycle between
 * files anywhere, and none between the folders of shared/ (each folder is a
 * layer: a folder may use the ones below it, never one that uses it back).
 * Type-only imports count: they are imports.
 */
module.exports = {
  forbidden: [
    { name: 'no-file-cycles', severity: 'error', from: {}, to: { circular: true } },
    { name: 'no-folder-cycles-in-shared', severity: 'error', scope: 'folder', from: { path: '^shared/' }, to: { path: '^shared/', circular: true } },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
  },
};
