/** Unit and synth tests. Type-checking is done once by `tsc` in `npm test`, so ts-jest only transpiles. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }] },
  snapshotResolver: '<rootDir>/test/snapshot-resolver.js',
  testTimeout: 180000,
};
