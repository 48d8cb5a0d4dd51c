import { PUBSUB_MATRIX } from './pubsub/matrix.js';
import { pubsubConformance } from './pubsub/suite.js';

for (const entry of PUBSUB_MATRIX) pubsubConformance(entry);
