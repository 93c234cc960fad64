import { Testing, Yaml } from 'cdk8s';
import * as fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import * as lib from '../src';
import { StepFlowChart, StepFlowChartProps } from '../src';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chartProps, KIT_MESSAGE } = require('./property/chart-props');

// GIVEN any combination of props (valid values mixed with the invalid ones a caller can
// write), WHEN synthesized, THEN either the kit rejects it with its own message format,
// or the output is well-formed YAML of well-formed objects — never a TypeError.
// Strict schema validation of what synthesizes runs in the static tier
// (verify/static/property-samples.js, same generator).
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const RUNS = Number(process.env.STEPFLOW_PROPERTY_RUNS ?? 100);

type Outcome = { rejected: boolean; detail: string };

function outcome(props: StepFlowChartProps): Outcome {
  const app = Testing.app();
  let objects: any[];
  try {
    objects = Testing.synth(new StepFlowChart(app, 'p', props));
  } catch (e) {
    const err = e as Error;
    if (err.constructor !== Error) throw new Error(`${err.constructor.name} instead of the kit's message: ${err.message}\n${err.stack}`);
    if (!KIT_MESSAGE.test(err.message)) throw new Error(`not the kit's message format:\n${err.message}`);
    return { rejected: true, detail: err.message };
  }
  const text = Yaml.stringify(...objects);
  const docs = parseAllDocuments(text);
  for (const d of docs) if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors[0].message}`);
  if (JSON.stringify(docs.map((d) => d.toJS())) !== JSON.stringify(objects)) throw new Error('the YAML does not read back as the objects');
  for (const o of objects) {
    const where = `${o.kind}/${o.metadata?.name}`;
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') throw new Error(`${where}: no apiVersion or kind`);
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(o.metadata.name) || o.metadata.name.length > 253) throw new Error(`${where}: not a valid object name`);
    if (o.kind !== 'Namespace' && o.metadata.namespace !== objects[0].metadata.name) throw new Error(`${where}: outside the installation's namespace`);
    for (const v of Object.values(o.metadata.labels ?? {})) if (!LABEL_VALUE.test(String(v)) || String(v).length > 63) throw new Error(`${where}: label value ${v}`);
  }
  return { rejected: false, detail: text.slice(0, 80) };
}

test(`${RUNS} generated prop combinations: the kit's message or well-formed objects`, () => {
  const seen = { rejected: 0, synthesized: 0 };
  fc.assert(fc.property(chartProps(fc, lib), (props: StepFlowChartProps) => {
    const o = outcome(props);
    seen[o.rejected ? 'rejected' : 'synthesized'] += 1;
  }), { numRuns: RUNS, seed: Number(process.env.STEPFLOW_PROPERTY_SEED ?? 20261201) });
  // The generator explores both sides, so neither half of the property is vacuous.
  expect(seen.rejected).toBeGreaterThan(RUNS / 10);
  expect(seen.synthesized).toBeGreaterThan(RUNS / 20);
});
