// Type checking is `tsc --noEmit` (make infra-test). tsconfig.json sets isolatedModules,
// so ts-jest only transpiles each file, which keeps a test file's start-up short.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': 'ts-jest',
  },
  testTimeout: 120000,
};
