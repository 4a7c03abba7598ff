// ESLint flat config, modelled on the Effect-TS/effect monorepo's own `eslint.config.mjs`:
// `@effect/eslint-plugin` (dprint as the formatter, no barrel imports in the library), the
// non-type-checked `typescript-eslint` recommended rules, and Effect's rule choices on top.
// Run with `npm run lint` (zero warnings allowed) and `npm run lint:fix`.
import * as effectEslint from "@effect/eslint-plugin"
import js from "@eslint/js"
import importPlugin from "eslint-plugin-import"
import simpleImportSort from "eslint-plugin-simple-import-sort"
import sortDestructureKeys from "eslint-plugin-sort-destructure-keys"
import { defineConfig, globalIgnores } from "eslint/config"
import tseslint from "typescript-eslint"

export default defineConfig(
  globalIgnores(["**/dist/", "**/coverage/", "**/node_modules/", ".data/", "scratch/"]),
  js.configs.recommended,
  // Not type-checked on purpose: keeps lint fast; `npm run typecheck` covers the types.
  tseslint.configs.recommended,
  // Turns off every core formatting rule and enables `@effect/dprint`.
  effectEslint.configs.dprint,
  {
    files: ["**/*.{ts,mts,cts,js,mjs,cjs}"],
    plugins: {
      import: importPlugin,
      "simple-import-sort": simpleImportSort,
      "sort-destructure-keys": sortDestructureKeys
    },
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module"
    },
    rules: {
      // --- Effect's choices for core rules
      "no-fallthrough": "off",
      "no-irregular-whitespace": "off",
      "object-shorthand": "error",
      "prefer-destructuring": "off",
      // dprint sorts import declarations and named imports itself.
      "sort-imports": "off",
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
          message: "Do not use spread arguments in Array.push"
        }
      ],
      "no-unused-vars": "off",
      // `Effect.gen(function*() { ... })` bodies legitimately have no `yield`.
      "require-yield": "off",
      "prefer-rest-params": "off",
      "prefer-spread": "off",

      // --- imports
      "import/first": "error",
      "import/newline-after-import": "error",
      "import/no-duplicates": "error",
      // TypeScript resolves modules (and `npm run typecheck` checks them); no import resolver is configured.
      "import/no-unresolved": "off",
      "import/order": "off",
      // Registered as in Effect's config but off: dprint's ordering is the one enforced.
      "simple-import-sort/imports": "off",
      "sort-destructure-keys/sort-destructure-keys": "error",

      // --- typescript-eslint, as Effect configures it
      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/consistent-type-imports": "warn",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unsafe-function-type": "off",
      "@typescript-eslint/no-wrapper-object-types": "off",
      "@typescript-eslint/ban-ts-comment": "off",
      "@typescript-eslint/explicit-function-return-type": "off",
      "@typescript-eslint/explicit-module-boundary-types": "off",
      "@typescript-eslint/no-array-constructor": "off",
      "@typescript-eslint/no-use-before-define": "off",
      "@typescript-eslint/no-namespace": "off",
      // As in Effect: `any` is deliberate in type-level positions (`Decider<State, any, Event, any, any>`
      // accepts every decider of a state), where `unknown` would not type-check.
      "@typescript-eslint/no-explicit-any": "off",

      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    // The library itself: no console output, and deep imports only (`effect/Effect`, not `{ Effect } from "effect"`).
    // Not applied to test/: its child-process helpers talk to the parent test over stdout with console.log.
    files: ["src/**/*"],
    rules: {
      "no-console": "error",
      "@effect/no-import-from-barrel-package": [
        "error",
        {
          packageNames: [
            "effect",
            "@effect/experimental",
            "@effect/platform",
            "@effect/platform-node",
            "@effect/sql",
            "@effect/sql-pg",
            "@effect/sql-sqlite-node"
          ]
        }
      ]
    }
  }
)
