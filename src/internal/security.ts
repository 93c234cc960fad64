import * as k8s from '../../imports/k8s';

/**
 * Pod-level security context that passes Pod Security "restricted": non-root with a fixed
 * UID/GID, the runtime's default seccomp profile, volumes owned by the group.
 */
export function restrictedPodSecurityContext(uid: number, gid: number): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    fsGroup: gid,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Container-level security context: nothing to escalate, nothing to write, no capabilities. */
export function restrictedContainerSecurityContext(uid: number, gid: number): k8s.SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
