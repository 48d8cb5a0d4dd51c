/** Optional state store capabilities, spelled as Dapr's `state/feature.go` spells them. */
export const STATE_FEATURES = ['ETAG', 'TRANSACTIONAL', 'TTL'] as const;
export type StateFeature = (typeof STATE_FEATURES)[number];
