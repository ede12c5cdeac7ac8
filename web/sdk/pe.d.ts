// TypeScript types of the Profit Engine storefront SDK (web/sdk/pe.js, served at /sdk/pe.js).
// The event shapes mirror the C definition (src/events/defs.c) and the Zod schemas
// (web/sdk/schema.mjs); bounds are noted in the comments ("≤ 128 B" = bytes of UTF-8).
//
//   <script src="https://engine.example/sdk/pe.js"></script>
//   pe.init({ key: 'pk_…' });
//   pe.addToCart({ productId: 'sku-1', quantity: 1, price: 19.9, currency: 'EUR' });

/** A JSON value (what `custom` and custom events' properties may hold). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Free key/values: at most 50 keys over all levels, 3 levels deep (the object itself is level 1),
 * finite numbers, 4096 bytes serialised.
 */
export type FreeObject = { [key: string]: JsonValue };

/** ISO 4217 code: three upper-case letters ("EUR"). */
export type Currency = string;
/** ISO 3166-1 alpha-2 code: two upper-case letters ("FR"). */
export type Country = string;

/** One line of an order. */
export interface LineItem {
  /** ≤ 128 B, non-empty */
  productId: string;
  /** integer 1..10000 */
  quantity: number;
  /** unit price, 0..1e9 */
  price: number;
  /** ≤ 128 B */
  variantId?: string;
  /** ≤ 256 B */
  name?: string;
  /** ≤ 256 B */
  category?: string;
}

/** storefront.page.viewed: sent by the SDK itself; the page is described by context.page/utm. */
export type PageViewedProperties = Record<string, never>;

/** storefront.product.viewed */
export interface ProductViewedProperties {
  productId: string;
  variantId?: string;
  name?: string;
  category?: string;
  /** 0..1e9 */
  price?: number;
  currency?: Currency;
}

/** storefront.cart.item_added (funnel step: cart) */
export interface AddToCartProperties {
  productId: string;
  /** integer 1..10000 */
  quantity: number;
  /** unit price, 0..1e9 */
  price: number;
  currency: Currency;
  variantId?: string;
  name?: string;
  category?: string;
}

/** storefront.cart.viewed (funnel step: cart) */
export interface CartViewedProperties {
  /** 0..1e9 */
  cartValue?: number;
  currency?: Currency;
  /** integer 0..10000: units in the cart */
  itemCount?: number;
}

/** checkout.session.started (funnel step: checkout) */
export interface CheckoutStartedProperties {
  /** 0..1e9 */
  cartValue: number;
  currency: Currency;
  /** integer 0..10000 */
  itemCount?: number;
}

/** checkout.shipping.submitted (funnel step: shipping) */
export interface ShippingSubmittedProperties {
  /** ≤ 128 B, non-empty */
  shippingMethod: string;
  /** 0..1e9 */
  shippingCost?: number;
  currency?: Currency;
  /** destination */
  country?: Country;
}

/** checkout.payment.submitted (funnel step: payment) */
export interface PaymentSubmittedProperties {
  /** ≤ 128 B, non-empty */
  paymentMethod: string;
}

/** checkout.order.completed (funnel step: confirmation) */
export interface OrderCompletedProperties {
  /** ≤ 128 B, non-empty */
  orderId: string;
  /** order total, 0..1e9 */
  value: number;
  /** of every amount of the order */
  currency: Currency;
  /** 1..500 lines */
  items: LineItem[];
  shipping?: number;
  tax?: number;
  discount?: number;
  /** ≤ 64 B */
  coupon?: string;
}

/** experiment.exposure.assigned */
export interface ExposureAssignedProperties {
  /** ≤ 128 B */
  flagKey: string;
  /** ≤ 128 B */
  variant: string;
}

/** The properties of every defined event, by name. */
export interface EventProperties {
  'storefront.page.viewed': PageViewedProperties;
  'storefront.product.viewed': ProductViewedProperties;
  'storefront.cart.item_added': AddToCartProperties;
  'storefront.cart.viewed': CartViewedProperties;
  'checkout.session.started': CheckoutStartedProperties;
  'checkout.shipping.submitted': ShippingSubmittedProperties;
  'checkout.payment.submitted': PaymentSubmittedProperties;
  'checkout.order.completed': OrderCompletedProperties;
  'experiment.exposure.assigned': ExposureAssignedProperties;
}

export type KnownEventName = keyof EventProperties;
/** A merchant's own event: custom.<entity>.<action>, each part [a-z0-9_]{1,64}. */
export type CustomEventName = `custom.${string}.${string}`;
export type EventName = KnownEventName | CustomEventName;

export type DeviceType = 'desktop' | 'mobile' | 'tablet' | 'other';

/** What the SDK fills in by itself. Strings are cut to their bounds. */
export interface EventContext {
  page?: {
    /** ≤ 2048 B */
    url?: string;
    /** ≤ 1024 B */
    path?: string;
    /** ≤ 2048 B */
    referrer?: string;
    /** ≤ 512 B */
    title?: string;
  };
  /** The UTM parameters the session started with (each ≤ 256 B). */
  utm?: { source?: string; medium?: string; campaign?: string; term?: string; content?: string };
  device?: { type: DeviceType };
  /** ≤ 1024 B */
  userAgent?: string;
  /** BCP 47, ≤ 35 B */
  locale?: string;
}

/** An event as sent to POST /v1/events (and as eventSchema in schema.mjs accepts it). */
export interface PeEvent<N extends EventName = EventName> {
  /** UUID v4, the idempotency key */
  eventId: string;
  name: N;
  /** RFC 3339 */
  timestamp: string;
  /** RFC 3339; the SDK sets it once per batch instead */
  sentAt?: string;
  /** ≤ 64 B, no control characters (the same for anonymousId, userId, storeId) */
  sessionId: string;
  anonymousId: string;
  userId?: string;
  /** taken from the key when absent; must match it when present */
  storeId?: string;
  context?: EventContext;
  properties?: N extends KnownEventName ? EventProperties[N] : FreeObject;
  custom?: FreeObject;
}

/** The body of POST /v1/events: at most 500 events and 512 KB. */
export interface Batch {
  events: PeEvent[];
  sentAt?: string;
}

/** The answer to a batch (200, after the accepted events are committed). */
export interface BatchResult {
  accepted: number;
  rejected: { index: number; eventId: string; code: string; message: string }[];
}

export interface InitOptions {
  /** The store's publishable key (pk_…). */
  key: string;
  /** Where the engine answers (origin, no path); default: the origin pe.js was loaded from. */
  endpoint?: string;
  /** ms between sends while events wait; default 2000. */
  flushInterval?: number;
  /** Events per request, 1..500; default 20. A full batch is sent at once. */
  maxBatch?: number;
  /** true/false sets (and remembers) consent; absent: what the visitor chose last, else true. */
  consent?: boolean;
  /** Logs queueing, retries and refusals with console.debug. */
  debug?: boolean;
  /** false: no automatic storefront.page.viewed on init and history navigations. */
  autoPageView?: boolean;
  /** ms pe.flags() waits for the engine before answering defaults; default 300. */
  flagsTimeout?: number;
  /** Attributes added to every flag evaluation's context (targeting rules may use them). */
  context?: FlagContext;
}

/** Flag evaluation context attributes beyond those the SDK sets (targetingKey = anonymousId,
 *  sessionId, device, path, userId, utm_source … utm_content). */
export type FlagContext = Record<string, string | number | boolean>;

export interface FlagsOptions {
  /** Merged over InitOptions.context for this page's evaluation. */
  context?: FlagContext;
  /** ms to wait for the engine; default InitOptions.flagsTimeout. */
  timeout?: number;
}

/** One page's flag answers: the engine's, or defaults (`ok` false). */
export interface Flags {
  /** true when the engine answered (now or earlier in this session, for this path). */
  readonly ok: boolean;
  /** The flag's value; `defaultValue` when the flag is unknown, not evaluated or of another type. */
  value(key: string, defaultValue: boolean): boolean;
  value(key: string, defaultValue: string): string;
  value(key: string, defaultValue: number): number;
  value<T extends object>(key: string, defaultValue: T): T;
  /** The flag's value, or undefined. */
  value(key: string): unknown;
  /** The variant the visitor is in (e.g. 'control', 'treatment'); undefined when not evaluated. */
  variant(key: string): string | undefined;
}

/**
 * window.pe. Every method is safe to call at any time: none throws, and events tracked before
 * init() are held until it runs. Tracking methods return the new event's id, or undefined when
 * nothing was recorded (no consent, a bad name, before init).
 */
export interface ProfitEngine {
  readonly version: string;
  init(options: InitOptions): void;
  productViewed(properties: ProductViewedProperties, custom?: FreeObject): string | undefined;
  addToCart(properties: AddToCartProperties, custom?: FreeObject): string | undefined;
  cartViewed(properties?: CartViewedProperties, custom?: FreeObject): string | undefined;
  checkoutStarted(properties: CheckoutStartedProperties, custom?: FreeObject): string | undefined;
  shippingSubmitted(properties: ShippingSubmittedProperties, custom?: FreeObject): string | undefined;
  paymentSubmitted(properties: PaymentSubmittedProperties, custom?: FreeObject): string | undefined;
  orderCompleted(properties: OrderCompletedProperties, custom?: FreeObject): string | undefined;
  /** Any defined event, or custom.<entity>.<action> with free properties. */
  track<N extends KnownEventName>(name: N, properties: EventProperties[N], custom?: FreeObject): string | undefined;
  track(name: CustomEventName, properties?: FreeObject, custom?: FreeObject): string | undefined;
  /** Records a page view now (single-page apps with their own router). */
  page(): void;
  /** Attaches userId (≤ 64 B) to later events; null or '' forgets it. */
  identify(userId: string | null): void;
  /** false stops all tracking and sending and empties the queue; remembered across pages. */
  consent(granted: boolean): void;
  /** Sends what is queued now; resolves when done or when a send failed (never rejects). */
  flush(): Promise<void>;
  /**
   * The flags for this page: one OFREP bulk evaluation per page path and session (kept in
   * sessionStorage), shared by every call on the page. Resolves to defaults after the timeout,
   * without consent (no request), before init and on any failure; never rejects.
   */
  flags(options?: FlagsOptions): Promise<Flags>;
  /** A copy of the events waiting to be sent. */
  queued(): PeEvent[];
  /** The current identifiers. */
  ids(): { anonymousId: string; sessionId: string | null; userId: string | null };
}

declare global {
  interface Window {
    pe: ProfitEngine;
  }
  const pe: ProfitEngine;
}
