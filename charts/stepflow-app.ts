import * as fs from 'fs';
import * as path from 'path';
import { ApiObject, App, AppProps, Chart, DependencyGraph, Names, Yaml, YamlOutputType } from 'cdk8s';
import { IConstruct } from 'constructs';

/**
 * A cdk8s App that writes one `<chart id>.yaml` per chart, for apps with many charts.
 *
 * cdk8s's `App.synth()` re-validates and re-resolves the dependencies of the whole app
 * once per chart, so synthesis time grows with the square of the number of charts. This
 * App validates once (same messages: `[path] error`, all at once) and then writes each
 * chart in dependency order. Apps with dependencies between charts fall back to cdk8s's
 * own synthesis, which orders the charts.
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
