// Runs generated tool modules under Node (copied next to a node_modules with @opencode-ai/plugin).
//   node harness.mjs schema <input.json>  -> {tool: [accepted?...]}   strict zod parse of each value
//   node harness.mjs call <input.json>    -> [output text...]          execute() with per-call env
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { tool } from "@opencode-ai/plugin"

const here = dirname(fileURLToPath(import.meta.url))
const [mode, inputPath] = process.argv.slice(2)
const input = JSON.parse(readFileSync(inputPath, "utf8"))
const load = async (name) => (await import(pathToFileURL(join(here, `${name}.mjs`)).href)).default

if (mode === "schema") {
  const out = {}
  for (const [name, values] of Object.entries(input)) {
    const schema = tool.schema.object((await load(name)).args).strict()
    out[name] = values.map((v) => schema.safeParse(v).success)
  }
  console.log(JSON.stringify(out))
} else if (mode === "call") {
  const out = []
  for (const call of input) {
    for (const [k, v] of Object.entries(call.env)) {
      if (v === null) delete process.env[k]
      else process.env[k] = v
    }
    out.push(await (await load(call.tool)).execute(call.args, { abort: undefined }))
  }
  console.log(JSON.stringify(out))
} else {
  throw new Error(`unknown mode ${mode}`)
}
