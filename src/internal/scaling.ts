import { AutoscalingOptions, ComputeResources, DisruptionBudgetOptions } from '../types';
import { LIMITS, PropValidator } from './validation';

/** Defaults of the autoscaler, used when the caller leaves a target out. */
export const HPA_DEFAULTS = { cpuUtilizationPercent: 70, memoryUtilizationPercent: 80, scaleDownStabilizationSeconds: 300 };

/** The fewest and the most replicas a workload runs: the autoscaler's range, or its fixed count. */
export function replicaRange(replicas: number, autoscaling?: AutoscalingOptions): { min: number; max: number } {
  return autoscaling ? { min: autoscaling.minReplicas, max: autoscaling.maxReplicas } : { min: replicas, max: replicas };
}

/** Check the replica count, the autoscaler and the disruption budget against each other. */
export function validateScaling(v: PropValidator, replicas: number, autoscaling?: AutoscalingOptions, pdb?: DisruptionBudgetOptions): void {
  v.integer('replicas', replicas, 1, LIMITS.replicas);
  if (autoscaling) {
    for (const key of ['minReplicas', 'maxReplicas'] as const) {
      if (autoscaling[key] === undefined) v.fail(`autoscaling.${key}`, undefined, 'an autoscaler needs minReplicas and maxReplicas (the preset has no autoscaler to merge with)');
    }
    const okMin = v.integer('autoscaling.minReplicas', autoscaling.minReplicas, 1, LIMITS.replicas);
    const okMax = v.integer('autoscaling.maxReplicas', autoscaling.maxReplicas, 1, LIMITS.replicas);
    if (okMin && okMax && autoscaling.minReplicas > autoscaling.maxReplicas) {
      v.fail('autoscaling.minReplicas', autoscaling.minReplicas, `must not exceed autoscaling.maxReplicas (${autoscaling.maxReplicas})`);
    }
    v.integer('autoscaling.cpuUtilizationPercent', autoscaling.cpuUtilizationPercent, 1, 100);
    v.integer('autoscaling.memoryUtilizationPercent', autoscaling.memoryUtilizationPercent, 1, 100);
    v.integer('autoscaling.scaleDownStabilizationSeconds', autoscaling.scaleDownStabilizationSeconds, 0, 3600);
  }
  if (pdb) {
    const floor = replicaRange(replicas, autoscaling).min;
    const given = [pdb.maxUnavailable, pdb.minAvailable].filter((x) => x !== undefined).length;
    if (given !== 1) {
      v.fail('disruptionBudget', pdb, 'give exactly one of maxUnavailable or minAvailable');
    } else if (pdb.maxUnavailable !== undefined) {
      if (v.integer('disruptionBudget.maxUnavailable', pdb.maxUnavailable, 0) && pdb.maxUnavailable === 0) {
        v.fail('disruptionBudget.maxUnavailable', 0, 'a budget of 0 blocks every voluntary eviction (node drains hang); use 1 or more');
      }
    } else if (pdb.minAvailable !== undefined && v.integer('disruptionBudget.minAvailable', pdb.minAvailable, 0) && pdb.minAvailable >= floor) {
      v.fail('disruptionBudget.minAvailable', pdb.minAvailable, `must be below the replica floor (${floor}), otherwise no pod can ever be evicted`);
    }
  }
}

/** Requests within limits, every figure a positive integer. */
export function validateResources(v: PropValidator, r: ComputeResources): void {
  const ok = [
    v.integer('resources.cpuRequestMillis', r.cpuRequestMillis, 1, LIMITS.cpuMillis),
    v.integer('resources.cpuLimitMillis', r.cpuLimitMillis, 1, LIMITS.cpuMillis),
    v.integer('resources.memoryRequestMiB', r.memoryRequestMiB, 1, LIMITS.memoryMiB),
    v.integer('resources.memoryLimitMiB', r.memoryLimitMiB, 1, LIMITS.memoryMiB),
  ];
  const okDisk = [
    v.integer('resources.ephemeralStorageRequestMiB', r.ephemeralStorageRequestMiB, 1, LIMITS.memoryMiB),
    v.integer('resources.ephemeralStorageLimitMiB', r.ephemeralStorageLimitMiB, 1, LIMITS.memoryMiB),
  ].every(Boolean);
  if (okDisk && r.ephemeralStorageRequestMiB !== undefined && r.ephemeralStorageLimitMiB !== undefined && r.ephemeralStorageRequestMiB > r.ephemeralStorageLimitMiB) {
    v.fail('resources.ephemeralStorageRequestMiB', r.ephemeralStorageRequestMiB, `must not exceed resources.ephemeralStorageLimitMiB (${r.ephemeralStorageLimitMiB})`);
  }
  if (ok.every(Boolean)) {
    if (r.cpuRequestMillis > r.cpuLimitMillis) v.fail('resources.cpuRequestMillis', r.cpuRequestMillis, `must not exceed resources.cpuLimitMillis (${r.cpuLimitMillis})`);
    if (r.memoryRequestMiB > r.memoryLimitMiB) v.fail('resources.memoryRequestMiB', r.memoryRequestMiB, `must not exceed resources.memoryLimitMiB (${r.memoryLimitMiB})`);
  }
}
