import * as fs from 'fs';
import * as path from 'path';
import { ApiObject, App, AppProps, Chart, DependencyGraph, Names, Yaml, YamlOutputType } from 'cdk8s';
import { IConstruct } from 'constructs';
import { StepFlowChart } from './chart';
import { CONTRACT } from './contract';
import { HelmChartOptions, HelmChartSource, helmChartFiles } from './release/helm';

/** Props of {@link StepFlowApp}: cdk8s's, and the Helm charts to write beside the YAML. */
export interface StepFlowAppProps extends AppProps {
  /**
   * Also write one Helm chart per chart (`<outdir>/helm/<chart id>/`): the chart's objects
   * but its Namespace, rendered by Helm exactly as in the YAML file; `{}` for the defaults.
   * @default - no Helm charts
   */
  readonly helmCharts?: HelmChartOptions;
}

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
  private readonly helmCharts?: HelmChartOptions;

  constructor(props: StepFlowAppProps = {}) {
    const { helmCharts, ...appProps } = props;
    super({ outputFileExtension: '.yaml', yamlOutputType: YamlOutputType.FILE_PER_CHART, ...appProps });
    this.helmCharts = helmCharts;
  }

  public synth(): void {
    const all = this.node.findAll();
    if (this.yamlOutputType !== YamlOutputType.FILE_PER_CHART || hasCrossChartDependency(all)) {
      super.synth();
      // cdk8s numbers the files of dependent charts in its chart order (`0001-<chart>.yaml`)
      if (this.helmCharts && this.yamlOutputType === YamlOutputType.FILE_PER_CHART) {
        this.charts.forEach((chart, i) => this.writeHelmChart(chart, chart.toJson(), `${String(i).padStart(4, '0')}-${Names.toDnsLabel(chart)}`));
      }
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
      if (this.helmCharts) this.writeHelmChart(chart, objects, Names.toDnsLabel(chart));
    }
  }

  /** The chart's Helm chart, in a folder of its own that holds nothing else (stale templates go). */
  private writeHelmChart(chart: Chart, objects: any[], yamlBase: string): void {
    const root = this.helmCharts!.outdir ?? path.join(this.outdir, 'helm');
    const dir = path.join(root, Names.toDnsLabel(chart));
    const yamlFile = path.relative(dir, path.join(this.outdir, `${yamlBase}${this.outputFileExtension}`));
    const files = helmChartFiles(helmSource(chart, objects, this.helmCharts!.version ?? kitVersion(), yamlFile));
    fs.rmSync(dir, { recursive: true, force: true });
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      fs.writeFileSync(path.join(dir, file), text);
    }
  }
}

/** The kit's own version, from its package.json. */
function kitVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === '@stepflow/deploy-kit') return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new Error('the kit\'s package.json was not found: give helmCharts.version');
  }
}

/** What the Helm chart of one chart says about it: a StepFlow installation, or any cdk8s chart. */
function helmSource(chart: Chart, objects: any[], version: string, yamlFile: string): HelmChartSource {
  const id = Names.toDnsLabel(chart);
  const name = id.startsWith(CONTRACT.app) ? id : `${CONTRACT.app}-${id}`;
  // Not `instanceof`: cdk8s's Chart answers it for every chart (Symbol.hasInstance).
  if (StepFlowChart.prototype.isPrototypeOf(chart)) return stepFlowHelmSource(chart as StepFlowChart, name, version, objects, yamlFile);
  return { name, version, objects, description: `The objects of the cdk8s chart ${id} but its Namespaces (${path.basename(yamlFile)})` };
}

function stepFlowHelmSource(chart: StepFlowChart, name: string, version: string, objects: any[], yamlFile: string): HelmChartSource {
  const ns = chart.core.namespace;
  const instance = chart.core.selector['app.kubernetes.io/instance'];
  const environment = chart.core.selector[CONTRACT.labels.environment];
  const release = CONTRACT.generations[chart.core.generation].orchestrator;
  const what = `StepFlow ${release}, installation ${instance} (environment ${environment}) in namespace ${ns}`;
  const selectNamespace = `kubectl apply -f ${yamlFile} -l '${'app.kubernetes.io/managed-by'}=${CONTRACT.managedBy},!app.kubernetes.io/instance'`;
  const core = chart.core.statefulSet.name;
  return {
    name,
    version,
    appVersion: release,
    description: `${what}: the objects of ${path.basename(yamlFile)} but the Namespace`,
    objects,
    notes: [
      `${what}.`,
      `  kubectl -n ${ns} get pods -l app.kubernetes.io/instance=${instance}`,
      `  kubectl -n ${ns} rollout status statefulset/${core}`,
      'The Namespace is not part of the release. Uninstalling keeps the StatefulSets\' claims (the core\'s state);',
      `delete them when their data may go: kubectl -n ${ns} delete pvc -l app.kubernetes.io/instance=${instance}`,
    ],
    readme: [
      `# ${name}`,
      '',
      `${what}, as a Helm chart: exactly the objects of \`${path.basename(yamlFile)}\` but the Namespace,`,
      'synthesized by the StepFlow deployment kit. Do not edit it: change the installation in TypeScript',
      'and synthesize again. The chart takes no values.',
      '',
      'The Namespace, with its Pod Security labels, is not part of the release (a release that owned it',
      'would delete it, and the claims in it, on uninstall), and the release must live in it. From this folder:',
      '',
      '```bash',
      `${selectNamespace}   # the Namespace, once`,
      `helm install ${instance} . --namespace ${ns}`,
      `helm upgrade ${instance} . --namespace ${ns}       # a newer synth of this chart`,
      `helm rollback ${instance} --namespace ${ns}`,
      `helm uninstall ${instance} --namespace ${ns}       # keeps the StatefulSets' claims`,
      '```',
    ].join('\n'),
  };
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
