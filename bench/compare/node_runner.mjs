// posthog-node runner of the side-by-side flag benchmark (see README.md).
//
//     node node_runner.mjs --definitions FILE --context FILE [--ids N] [--repeat R]
//
// Same CLI and the same last lines as our `bench_eval` (devtools/examples/bench_eval.rs):
// `load_us=`, `ns_per_eval=`, `evals=`, `results=`.
//
// - posthog-node is loaded from `.deps/node` beside this file (run.sh installs it there).
// - Definitions reach the client through its public `flagDefinitionCacheProvider` option.
//   Without a secret key the client is a "cache-only reader": it never fetches definitions,
//   it reads them from the provider. Polling is off (`featureFlagsPollingInterval: null`),
//   flag events are off, and the host is a closed local port.
// - Load: bytes -> ready to evaluate, i.e. `reloadFeatureFlags()` on a fresh client, which
//   calls the provider (`JSON.parse` of the document) and installs the definitions. Median
//   of R.
// - Evaluation: `await getFeatureFlag(key, distinctId, {personProperties, groups,
//   groupProperties, onlyEvaluateLocally: true, sendFeatureFlagEvents: false})` for every
//   flag and every id, one after the other. The SDK adds `distinct_id` to the person
//   properties and `$group_key` to each group's properties itself. Median of R passes.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const NO_NETWORK_HOST = 'http://127.0.0.1:9'

const depsDir = new URL('./.deps/node/', import.meta.url)
const depsRequire = createRequire(new URL('package.json', depsDir))
const { PostHog } = await import(pathToFileURL(depsRequire.resolve('posthog-node')).href)
const VERSION = JSON.parse(
  readFileSync(new URL('node_modules/posthog-node/package.json', depsDir), 'utf8')
).version

function fail(message) {
  console.error(`node_runner: ${message}`)
  process.exit(2)
}

function parseArgs(argv) {
  const a = { definitions: undefined, context: undefined, ids: undefined, repeat: 5 }
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) fail(`${name} needs a value`)
      return argv[++i]
    }
    switch (name) {
      case '--definitions':
        a.definitions = value()
        break
      case '--context':
        a.context = value()
        break
      case '--ids':
        a.ids = Number.parseInt(value(), 10)
        if (!Number.isInteger(a.ids) || a.ids < 0) fail('--ids: a number')
        break
      case '--repeat':
        a.repeat = Number.parseInt(value(), 10)
        if (!Number.isInteger(a.repeat) || a.repeat < 1) fail('--repeat: a number above 0')
        break
      case '-h':
      case '--help':
        console.log('usage: node_runner.mjs --definitions FILE --context FILE [--ids N] [--repeat R]')
        process.exit(0)
      default:
        fail(`unknown argument ${JSON.stringify(name)}`)
    }
  }
  if (!a.definitions) fail('--definitions FILE is required')
  if (!a.context) fail('--context FILE is required')
  return a
}

// A FlagDefinitionCacheProvider serving one definitions document from its text once armed.
class StaticDefinitions {
  constructor() {
    this.text = undefined
  }
  getFlagDefinitions() {
    if (this.text === undefined) return undefined
    const doc = JSON.parse(this.text)
    return {
      flags: doc.flags,
      group_type_mapping: doc.group_type_mapping ?? {},
      cohorts: doc.cohorts ?? {},
      property_matching_version: doc.property_matching_version,
      minimal_flag_called_events: doc.minimal_flag_called_events,
    }
  }
  shouldFetchFlagDefinitions() {
    return false
  }
  onFlagDefinitionsReceived() {}
  shutdown() {}
}

function newClient(provider) {
  return new PostHog('phc_bench_local_only', {
    host: NO_NETWORK_HOST,
    flagDefinitionCacheProvider: provider,
    featureFlagsPollingInterval: null,
    strictLocalEvaluation: true,
    sendFeatureFlagEvent: false,
    disableGeoip: true,
    flushAt: 1_000_000,
    flushInterval: 0,
  })
}

function median(values) {
  const v = [...values].sort((x, y) => x - y)
  return v[Math.floor(v.length / 2)]
}

function label(value) {
  if (value === undefined || value === null) return 'inconclusive'
  if (value === true) return 'true'
  if (value === false) return 'false'
  return `variant:${value}`
}

// JSON with keys sorted at every level, no spaces: serde_json's rendering of a BTreeMap.
function sortedJson(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  const keys = Object.keys(value).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(value[k])}`).join(',')}}`
}

const a = parseArgs(process.argv.slice(2))
const text = readFileSync(a.definitions, 'utf8')
let ctx
try {
  ctx = JSON.parse(readFileSync(a.context, 'utf8'))
} catch (e) {
  fail(`${a.context}: ${e.message}`)
}
const idsSpec = ctx.distinct_ids ?? {}
const count = a.ids ?? idsSpec.count
if (count === undefined) fail('distinct_ids.count (or --ids) is required')
const pattern = idsSpec.pattern ?? 'bench-user-{i}'
const personProperties = ctx.person_properties ?? {}
const groups = ctx.groups ?? {}
const groupProperties = ctx.group_properties ?? {}

// Load: median of R loads into a fresh client.
const loads = []
let client
for (let r = 0; r < a.repeat; r++) {
  const provider = new StaticDefinitions()
  const fresh = newClient(provider)
  // The constructor's own load finds the provider empty; let it settle before timing.
  await fresh.reloadFeatureFlags()
  provider.text = text
  const t = process.hrtime.bigint()
  await fresh.reloadFeatureFlags()
  loads.push(Number(process.hrtime.bigint() - t) / 1e3)
  if (!fresh.isLocalEvaluationReady()) fail('definitions did not load')
  if (client) await client.shutdown()
  client = fresh
}
const keys = JSON.parse(text).flags.map((f) => f.key)

const ids = Array.from({ length: count }, (_, i) => pattern.replaceAll('{i}', String(i)))
const options = {
  personProperties,
  groups,
  groupProperties,
  onlyEvaluateLocally: true,
  sendFeatureFlagEvents: false,
}
const results = Object.fromEntries(keys.map((k) => [k, {}]))
const passes = []
for (let pass = 0; pass < a.repeat; pass++) {
  let nanos = 0n
  for (const distinctId of ids) {
    const values = []
    const t = process.hrtime.bigint()
    for (const k of keys) {
      values.push(await client.getFeatureFlag(k, distinctId, options))
    }
    nanos += process.hrtime.bigint() - t
    if (pass === 0) {
      keys.forEach((k, i) => {
        const l = label(values[i])
        results[k][l] = (results[k][l] ?? 0) + 1
      })
    }
  }
  passes.push(Number(nanos) / Math.max(ids.length * keys.length, 1))
}
await client.shutdown()

console.log(`posthog-node ${VERSION}: ${keys.length} flags, ${ids.length} ids, ${a.repeat} passes`)
console.log(`load_us=${median(loads).toFixed(1)}`)
console.log(`ns_per_eval=${median(passes).toFixed(1)}`)
console.log(`evals=${ids.length * keys.length}`)
console.log(`results=${sortedJson(results)}`)
