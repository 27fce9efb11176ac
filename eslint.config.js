// Type-aware lint (`pnpm lint`, run by .ci/run). Everywhere (sources, tests, benchmarks, scripts,
// examples): the typescript-eslint rules that catch real bugs (a promise nobody awaits or handles, a
// promise where a boolean was meant, a thrown or rejected non-error, a cast that changes nothing, a
// fall-through) and a file-name rule. Sources of the packages and examples: all of
// recommendedTypeChecked too; tests and tools may use `any`. docs/decisions.md says why.
import js from '@eslint/js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import tseslint from 'typescript-eslint';

/**
 * Files are camelCase (`syncedStream.ts`), React components PascalCase (`TaskBoard.tsx`); a `.ts`
 * file may be PascalCase when it is named after the class it exports (`FileEventStore.ts`), and its
 * test after it. Suffixes such as `.test`, `.fast` or `.1` are not part of the name.
 */
const fileNames = {
  meta: { type: 'suggestion', messages: { name: '{{name}}: file names are camelCase; PascalCase only for a component (.tsx) or the class the file exports' } },
  create(context) {
    const file = path.basename(context.filename);
    const stem = file.replace(/(\.(test|fast|golden|browser|bench|config|\d+))*\.tsx?$/, '');
    if (/^[a-z][A-Za-z0-9]*$/.test(stem)) return {};
    const pascal = /^[A-Z][A-Za-z0-9]*$/.test(stem);
    // A test of a class file takes its name (`FileEventStore.test.ts`).
    if (pascal && stem !== file.replace(/\.tsx?$/, '') && existsSync(path.join(path.dirname(context.filename), `${stem}.ts`))) return {};
    return {
      'Program:exit'(program) {
        if (pascal && file.endsWith('.tsx')) return;
        const exportsClass = program.body.some(
          (node) => node.type === 'ExportNamedDeclaration' && node.declaration?.type === 'ClassDeclaration' && node.declaration.id?.name === stem,
        );
        if (!(pascal && exportsClass)) context.report({ node: program, messageId: 'name', data: { name: file } });
      },
    };
  },
};

/** Test code, benchmarks and tooling: held to the bug rules only. */
const TESTS = [
  '**/*.test.ts',
  '**/*.test.tsx',
  '**/test/**',
  'packages/tests/**',
  '**/bench/**',
  'bench/**',
  'scripts/**',
  '**/*Page.ts',
  '**/testing.ts',
  '**/testing/**',
  '**/*.config.ts',
];

/** Rules that catch real bugs, with types: checked everywhere, sources, tests, benchmarks and examples. */
const BUG_RULES = {
  '@typescript-eslint/no-floating-promises': 'error',
  '@typescript-eslint/no-misused-promises': 'error',
  '@typescript-eslint/await-thenable': 'error',
  '@typescript-eslint/only-throw-error': 'error',
  '@typescript-eslint/prefer-promise-reject-errors': 'error',
  '@typescript-eslint/no-unnecessary-type-assertion': 'error',
  '@typescript-eslint/no-base-to-string': 'error',
  'no-fallthrough': 'error',
};

export default tseslint.config(
  // packages/tests/consumer: an installed consumer's files, compiled by publishedPackages.test.ts against the packed packages.
  { ignores: ['**/dist/**', '**/node_modules/**', 'docs/**', '**/*.js', '**/*.mjs', '**/*.cjs', '**/*.d.ts', 'packages/tests/consumer/**'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { '@typescript-eslint': tseslint.plugin, lockstep: { rules: { 'file-names': fileNames } } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: { ...BUG_RULES, 'lockstep/file-names': 'error' },
  },
  {
    files: ['packages/*/src/**/*.{ts,tsx}', 'examples/*/src/**/*.{ts,tsx}'],
    ignores: TESTS,
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    rules: {
      ...BUG_RULES,
      // Store and transport interfaces return promises; an implementation that needs no await
      // (the memory store) still answers asynchronously, as the interface promises.
      '@typescript-eslint/require-await': 'off',
      // The compiler's noUnusedLocals/noUnusedParameters check this, with `_` for the unused.
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },
  {
    // Where values are untyped by nature: draft and record Proxies (any key of any state), the
    // domain's erased handler maps, and browser APIs typed by hand because the client compiles
    // without the DOM lib. The rest of the code meets these values through typed functions.
    files: [
      'packages/core/src/draft.ts',
      'packages/core/src/persistentRecord.ts',
      'packages/core/src/domain.ts',
      'packages/client/src/persistence/indexedDbStorage.ts',
      'packages/client/src/crossTab/tabPlatform.ts',
    ],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
