import { Testing } from 'cdk8s';
import { DEV } from '../charts/dev';
import { prod } from '../charts/prod';
import { StepFlowChart, StepFlowChartProps } from '../src';
import { DEFAULT_GENERATION } from '../src/contract';

/** The props of this repository's installations (charts/), so tests synthesize what dist/ holds. */
export const DEV_PROPS: StepFlowChartProps = { ...DEV, generation: DEFAULT_GENERATION };
export const PROD_PROPS: StepFlowChartProps = prod(DEFAULT_GENERATION);

/** Synthesize one chart in a fresh app and return its objects. */
export function synth(props: StepFlowChartProps, id = 'test'): any[] {
  const app = Testing.app();
  const chart = new StepFlowChart(app, id, props);
  return Testing.synth(chart);
}

/** The synth error message, or fail the test when synth succeeds. */
export function synthError(props: StepFlowChartProps): string {
  try {
    synth(props);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected synth to fail');
}

export function find(objects: any[], kind: string, name: string): any {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in [${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}]`);
  return found;
}

export const workloads = (objects: any[]) => objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');

/** Every container of every pod template, init containers included. */
export function containers(objects: any[]): any[] {
  return workloads(objects).flatMap((w) => [...(w.spec.template.spec.initContainers ?? []), ...w.spec.template.spec.containers]);
}
