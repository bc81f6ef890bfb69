/** `ebpf gen-types OBJ.o [-o FILE.d.ts]`: TypeScript declarations of an object's types, maps and variables. */
import { expectPositionals, optFlag, optString } from './args.js'
import type { Command } from './command.js'
import { generatedJson } from './format.js'
import { about, readObject, writeOutput } from './io.js'
import { loadOptionsFrom, OBJECT_OPTIONS } from './object-options.js'

export const genTypesCommand: Command = {
  name: 'gen-types',
  usage: 'ebpf gen-types OBJ.o [-o FILE.d.ts] [--json]',
  summary: 'generate TypeScript declarations for the types, maps and globals of an object',
  description:
    "Writes spec.declarations(): an interface for each BTF struct/union, enums as string unions, a 'Maps'\n" +
    "interface (key and value type of each map) and a 'Variables' interface, to use as\n" +
    'new Collection<Maps>(spec). Standard output unless -o is given.',
  options: {
    output: { short: 'o', value: true, arg: 'FILE.d.ts', help: 'write to this file instead of standard output' },
    json: { short: 'j', help: '{kind, language, output, bytes, text} (text when output is standard output)' },
    ...OBJECT_OPTIONS,
  },
  run(args) {
    const [file] = expectPositionals(args, ['OBJ.o'], 'gen-types') as [string]
    const spec = readObject(file, loadOptionsFrom(args, 'gen-types'))
    const text = about(file, () => spec.declarations())
    const output = optString(args, 'output') ?? '-'
    if (optFlag(args, 'json')) {
      if (output !== '-') writeOutput(output, text)
      process.stdout.write(generatedJson('declarations', 'typescript', output, text))
    } else writeOutput(output, text)
    return 0
  },
}
