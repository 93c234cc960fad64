/** The phrase that publishes the core without authentication; nothing shorter is accepted. */
export const UNAUTHENTICATED_ACKNOWLEDGEMENT = 'anyone who reaches the host can run code on the core';

/** The kinds of authentication in front of the core. */
export enum IngressAuthKind {
  EXTERNAL = 'external',
  CLIENT_CERTIFICATE = 'client-certificate',
  BASIC = 'basic',
  NONE = 'none',
}

/** External authentication: every request is first checked by an auth service (e.g. OAuth2 Proxy). */
export interface ExternalAuthOptions {
  /** URL the controller asks for each request; 2xx lets it through, e.g. `https://auth.example.com/oauth2/auth`. */
  readonly url: string;
  /**
   * Where browsers without a session are sent to sign in, e.g. `https://auth.example.com/oauth2/start?rd=$escaped_request_uri`.
   * @default - none: unauthenticated requests get 401
   */
  readonly signinUrl?: string;
  /**
   * Headers of the auth service's answer passed on to the core (e.g. `X-Auth-Request-User`).
   * @default []
   */
  readonly responseHeaders?: string[];
}

/** Client certificates verified against a CA bundle (mutual TLS at the ingress controller). */
export interface ClientCertificateAuthOptions {
  /** Secret in the installation's namespace holding the CA bundle under `ca.crt`. */
  readonly caSecretName: string;
  /**
   * How many intermediate certificates may stand between the client's and the CA.
   * @default 1
   */
  readonly verifyDepth?: number;
}

/** HTTP basic authentication from an htpasswd Secret. */
export interface BasicAuthOptions {
  /** Secret in the installation's namespace holding the htpasswd file under `auth`. */
  readonly secretName: string;
  /** @default 'StepFlow' */
  readonly realm?: string;
}

const NGINX = 'nginx.ingress.kubernetes.io';

/**
 * Who may use the core's API through the Ingress. The core's API runs users' code (the
 * UDF component), so an Ingress always names its authentication: one of the ingress
 * controller's own mechanisms (ingress-nginx annotations), or a loudly named choice of none.
 */
export class IngressAuthentication {
  /** Each request is checked by an external auth service first (ingress-nginx `auth-url`). */
  public static external(options: ExternalAuthOptions): IngressAuthentication {
    return new IngressAuthentication(IngressAuthKind.EXTERNAL, (_ns) => ({
      [`${NGINX}/auth-url`]: options.url,
      ...(options.signinUrl !== undefined ? { [`${NGINX}/auth-signin`]: options.signinUrl } : {}),
      ...(options.responseHeaders?.length ? { [`${NGINX}/auth-response-headers`]: options.responseHeaders.join(',') } : {}),
    }), { url: options.url, signinUrl: options.signinUrl });
  }

  /** Only clients with a certificate signed by the CA in this Secret (ingress-nginx `auth-tls-*`). */
  public static clientCertificate(options: ClientCertificateAuthOptions): IngressAuthentication {
    return new IngressAuthentication(IngressAuthKind.CLIENT_CERTIFICATE, (ns) => ({
      [`${NGINX}/auth-tls-secret`]: `${ns}/${options.caSecretName}`,
      [`${NGINX}/auth-tls-verify-client`]: 'on',
      [`${NGINX}/auth-tls-verify-depth`]: String(options.verifyDepth ?? 1),
    }), { secretName: options.caSecretName, verifyDepth: options.verifyDepth ?? 1 });
  }

  /** HTTP basic authentication against the htpasswd file in this Secret (ingress-nginx `auth-type: basic`). */
  public static basic(options: BasicAuthOptions): IngressAuthentication {
    return new IngressAuthentication(IngressAuthKind.BASIC, () => ({
      [`${NGINX}/auth-type`]: 'basic',
      [`${NGINX}/auth-secret`]: options.secretName,
      [`${NGINX}/auth-realm`]: options.realm ?? 'StepFlow',
    }), { secretName: options.secretName, realm: options.realm ?? 'StepFlow' });
  }

  /**
   * No authentication at all: anyone who reaches the host runs code on the core. Pass
   * exactly {@link UNAUTHENTICATED_ACKNOWLEDGEMENT} to confirm.
   */
  public static unauthenticated(acknowledgement: typeof UNAUTHENTICATED_ACKNOWLEDGEMENT): IngressAuthentication {
    return new IngressAuthentication(IngressAuthKind.NONE, () => ({}), { acknowledgement });
  }

  private constructor(
    public readonly kind: IngressAuthKind,
    private readonly render: (namespace: string) => Record<string, string>,
    /** The options as given, for validation and review. */
    public readonly options: Record<string, unknown>,
  ) {}

  /** The ingress-nginx annotations of this choice, for an Ingress in this namespace. */
  public annotations(namespace: string): Record<string, string> {
    return this.render(namespace);
  }
}
