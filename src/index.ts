// Public API of the StepFlow deployment kit. Only re-exports: what is not listed here
// (src/internal/*, the contract helpers other than builtinIdentity) is not part of the API.
export * from './types';
export * from './environments';
export { IComponentServer, ICoreEndpoint } from './components/common';
export { ComponentId, ComponentIdentity, HealthPaths, builtinIdentity } from './contract';
export { StepFlowComponent, VolumeMountOptions } from './components/component';
export { StepFlowComponentServer, StepFlowComponentServerProps, PythonComponent, ServerDefinition, WorkerProbe, WorkerProbes } from './components/component-server';
export * from './components/worker';
export * from './components/core';
export * from './components/python-sdk';
export * from './components/inference';
export * from './platform/namespace';
export * from './platform/network-policies';
export * from './platform/ingress';
export * from './platform/ingress-auth';
export * from './platform/network-access';
export * from './config/telemetry';
export * from './config/stepflow-config';
export * from './config/state-store';
export * from './release/image-lock';
export * from './release/helm';
export * from './chart';
export * from './app';
