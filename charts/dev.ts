// This repository's development installation (dist/dev.yaml): the DEV preset as it is,
// for a laptop k3s (scripts/dev.sh).
import { StepFlowChartProps, StepFlowEnvironment } from '../src';

export const DEV: StepFlowChartProps = {
  environment: StepFlowEnvironment.DEV,
};
