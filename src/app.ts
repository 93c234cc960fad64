import * as fs from 'fs';
import * as path from 'path';
import { ApiObject, App, AppProps, Chart, DependencyGraph, Names, Yaml, YamlOutputType } from 'cdk8s';
import { IConstruct } from 'constructs';

/**
 * A cdk8s App that writes one `<chart id>.yaml` per chart, for apps with many charts.
 *
 * cdk8s's `App.synth()` re-validates and re-resolves the dependencies of the whole app
 * once per chart, so synthesis time grows with the square of the number of charts. This
 * App validates once (same messages: `[path] error`, all at once), turns dependencies
 * between constructs into dependencies between their objects once, as cdk8s does, and
 * then writes each chart in dependency order. Apps with dependencies between charts fall
 * back to cdk8s's own synthesis, which orders and numbers the charts.
 */
export class StepFlowApp extends App {
  constructor(props: AppProps = {}) {
    super({ outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART, ...props });
  }

  public synth(): void {
    const all = this.node.findAll();
    if (this.yamlOutputType !== YamlOutputType.FILE_PER_CHART || hasCrossChartDependency(all)) {
      super.synth();
      return;
    }
    const errors = all.flatMap((c) => c.node.validate().map((e) => `[${c.node.path}] ${e}`));
    if (errors.length > 0) {
      throw new Error(`Validation failed with the following errors:\n  ${errors.join('\n  ')}`);
    }
    addObjectDependencies(all);
    fs.mkdirSync(this.outdir, { recursive: true });
    for (const chart of this.charts) {
      const objects = new DependencyGraph(chart.node).topology()
        .filter((x): x is ApiObject => x instanceof ApiObject && Chart.of(x) === chart)
        .map((o) => o.toJson());
      Yaml.save(path.join(this.outdir, `${Names.toDnsLabel(chart)}${this.outputFileExtension}`), objects);
    }
  }
}

function hasCrossChartDependency(constructs: IConstruct[]): boolean {
  return constructs.some((c) => !(c instanceof App) && c.node.dependencies.some((d) => !(d instanceof App) && Chart.of(d) !== Chart.of(c)))
    || constructs.some((c) => c instanceof Chart && c.node.children.some((x) => x instanceof Chart));
}

/**
 * `a.node.addDependency(b)` between two constructs: every object under `a` then depends
 * on every object under `b` (within one chart), which is what orders them in the output.
 */
function addObjectDependencies(constructs: IConstruct[]): void {
  const objectsUnder = new Map<IConstruct, ApiObject[]>();
  const under = (c: IConstruct): ApiObject[] => {
    let found = objectsUnder.get(c);
    if (!found) {
      found = c.node.findAll().filter((x): x is ApiObject => x instanceof ApiObject && Chart.of(x) === Chart.of(c));
      objectsUnder.set(c, found);
    }
    return found;
  };
  for (const source of constructs) {
    if (source instanceof App) continue;
    for (const target of source.node.dependencies) {
      if (target instanceof App) continue;
      for (const t of under(target)) {
        for (const s of under(source)) if (s !== t) s.node.addDependency(t);
      }
    }
  }
}
