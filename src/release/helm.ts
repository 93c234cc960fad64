import { Yaml } from 'cdk8s';

/** Options of the Helm charts `StepFlowApp` writes beside its YAML files. */
export interface HelmChartOptions {
  /**
   * The folder that holds the charts, one sub-folder per chart (`<outdir>/<chart id>/`).
   * Keep it below the YAML folder, not in it: `kubectl apply -f dist/` reads only the
   * folder's own files, never sub-folders.
   * @default - `helm` in the App's outdir
   */
  readonly outdir?: string;
  /**
   * The charts' version (SemVer 2), `version` in Chart.yaml.
   * @default - the kit's own version
   */
  readonly version?: string;
}

/** What one Helm chart is made of. */
export interface HelmChartSource {
  /** The chart's name (`name` in Chart.yaml): lower-case letters, digits and '-'. */
  readonly name: string;
  /** SemVer 2. */
  readonly version: string;
  /**
   * The version of what the chart deploys (`appVersion`), e.g. StepFlow's release.
   * @default - none
   */
  readonly appVersion?: string;
  /** One line for Chart.yaml. */
  readonly description: string;
  /** The objects, as synthesized; Namespaces are left out of the chart. */
  readonly objects: readonly any[];
  /**
   * Lines for the notes `helm install` prints (templates/NOTES.txt).
   * @default - none
   */
  readonly notes?: readonly string[];
  /**
   * The chart's README.md (Markdown).
   * @default - none
   */
  readonly readme?: string;
}

/** SemVer 2, as Helm requires of a chart version. */
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const CHART_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/**
 * The oldest Kubernetes the manifests are written for: its API (cdk8s-plus-30), Pod Security
 * pinned to v1.30, validated against 1.30's schemas by the static tier.
 */
export const HELM_KUBE_VERSION = '>=1.30.0-0';

/**
 * Text that Helm's template engine renders back to itself: every `{{` becomes the action
 * `{{ "{{" }}`, which prints `{{`. Nothing else in the text starts an action, so any value
 * (an annotation, a config file, an env var) survives the chart as it is.
 */
export function escapeHelmTemplate(text: string): string {
  return text.replace(/\{\{/g, '{{ "{{" }}');
}

const isNamespace = (o: any) => o?.apiVersion === 'v1' && o?.kind === 'Namespace';

/**
 * The files of a Helm chart that renders exactly `objects` but their Namespaces, as paths
 * relative to the chart's folder and their text. Each object is one template, its YAML as
 * `Yaml.stringify` writes it, escaped so that Helm renders it byte for byte; the chart takes
 * no values (`values.schema.json` rejects any). When every namespaced object is in one
 * namespace, the chart fails unless the release is installed there (the objects name it).
 */
export function helmChartFiles(source: HelmChartSource): Record<string, string> {
  if (!CHART_NAME.test(source.name) || source.name.length > 53) {
    throw new Error(`Helm chart name ${JSON.stringify(source.name)}: expected lower-case letters, digits and '-', at most 53 characters`);
  }
  if (!SEMVER.test(source.version)) {
    throw new Error(`Helm chart ${source.name}: version ${JSON.stringify(source.version)} is not SemVer 2 (e.g. '1.4.2'), which Helm requires`);
  }
  const objects = source.objects.filter((o) => !isNamespace(o));
  const namespaces = [...new Set(objects.map((o) => o?.metadata?.namespace).filter((ns) => typeof ns === 'string'))];

  const files: Record<string, string> = {};
  files['Chart.yaml'] = Yaml.stringify({
    apiVersion: 'v2',
    name: source.name,
    description: source.description,
    type: 'application',
    version: source.version,
    ...(source.appVersion !== undefined ? { appVersion: source.appVersion } : {}),
    kubeVersion: HELM_KUBE_VERSION,
  });
  files['values.yaml'] = [
    '# This chart takes no values: it holds exactly the objects its synthesized YAML holds.',
    '# Change the installation in TypeScript and synthesize again (npm run synth).',
    '{}',
    '',
  ].join('\n');
  files['values.schema.json'] = `${JSON.stringify({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: `${source.name} takes no values`,
    description: 'The chart is synthesized from TypeScript: change the installation there, not with values.',
    type: 'object',
    additionalProperties: false,
  }, null, 2)}\n`;

  const templates: Record<string, string> = {};
  for (const o of objects) {
    const file = `templates/${String(o.kind).toLowerCase()}-${o.metadata?.name}.yaml`;
    if (templates[file] !== undefined) {
      throw new Error(`Helm chart ${source.name}: two objects would share ${file} (${o.kind} ${o.metadata?.name} in two namespaces); give them different names`);
    }
    templates[file] = escapeHelmTemplate(Yaml.stringify(o));
  }
  if (namespaces.length === 1) {
    const ns = JSON.stringify(namespaces[0]);
    templates['templates/namespace-check.yaml'] = [
      '{{- /* The objects name their namespace (the StepFlow config and the NetworkPolicies do too): the release lives there. */ -}}',
      `{{- if ne .Release.Namespace ${ns} }}`,
      `{{- fail (printf "this chart's objects live in namespace %s, not %s: install the release there (helm install <release> <chart> --namespace %s)" ${ns} .Release.Namespace ${ns}) }}`,
      '{{- end }}',
      '',
    ].join('\n');
  }
  if (source.readme !== undefined) files['README.md'] = source.readme.endsWith('\n') ? source.readme : `${source.readme}\n`;
  if (source.notes?.length) templates['templates/NOTES.txt'] = `${source.notes.map(escapeHelmTemplate).join('\n')}\n`;
  for (const file of Object.keys(templates).sort()) files[file] = templates[file];
  return files;
}
