import { defineConfig } from 'vitest/config';

/**
 * `npm run test:image` only: builds the arm64 root file system (many
 * minutes) and runs the firmware in it under qemu-user. Not part of
 * `npm test` — its files end in `.image.ts`, which the main config does not include.
 */
export default defineConfig({
  test: {
    include: ['test/image/**/*.image.ts'],
    testTimeout: 300_000,
    hookTimeout: 90 * 60_000,
    pool: 'forks',
    // Both files run image/build.sh, which shares its caches: one at a time.
    fileParallelism: false,
  },
});
