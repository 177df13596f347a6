/** Two tiers: `unit` (no servers) and `integration` (real NATS + Postgres; see test/support). */
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }] },
  moduleNameMapper: { '^@orderflow/(contracts|messaging|persistence|runtime)$': '<rootDir>/libs/$1/src' },
};
module.exports = {
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.int-spec.ts', '<rootDir>/apps/**/*.int-spec.ts'] },
  ],
};
