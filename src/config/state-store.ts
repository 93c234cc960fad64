import { CONTRACT } from '../contract';

/** Options of the sqlite state store on the core's PersistentVolumeClaim. */
export interface SqliteStateStoreOptions {
  /**
   * Size of the claim.
   * @default 1
   */
  readonly sizeGiB?: number;
  /**
   * StorageClass of the claim.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * Absolute path of the database file; must lie on the claim (under `/var/lib/stepflow/`).
   * @default '/var/lib/stepflow/stepflow.db'
   */
  readonly databasePath?: string;
}

/** Which kind of store keeps the core's flows, runs and blobs. */
export enum StateStoreKind {
  /** sqlite on a PersistentVolumeClaim: survives restarts, rollouts and crashes. */
  SQLITE = 'sqlite',
  /** In the core process's memory: lost at every restart. */
  IN_MEMORY = 'inMemory',
}

/**
 * Where the core server keeps its state (flows, runs, blobs and the execution journal
 * that recovery reads). `StateStore.sqlite()` is the default everywhere; in-memory state
 * is only for throwaway installations and is rejected by production presets.
 */
export class StateStore {
  /** sqlite on a PersistentVolumeClaim of the core's StatefulSet (one claim, one core). */
  public static sqlite(options: SqliteStateStoreOptions = {}): StateStore {
    return new StateStore(StateStoreKind.SQLITE, {
      sizeGiB: options.sizeGiB ?? 1,
      storageClassName: options.storageClassName,
      databasePath: options.databasePath ?? `${CONTRACT.components.core.state.mountPath}/${CONTRACT.components.core.state.file}`,
    });
  }

  /** State in the core process's memory: every restart, rollout or eviction loses all of it. */
  public static inMemory(): StateStore {
    return new StateStore(StateStoreKind.IN_MEMORY, {});
  }

  private constructor(
    public readonly kind: StateStoreKind,
    /** The sqlite options resolved against their defaults (empty for in-memory). */
    public readonly sqliteOptions: SqliteStateStoreOptions,
  ) {}

}
