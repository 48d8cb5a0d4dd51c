import { STATE_MATRIX } from './state/matrix.js';
import { stateConformance } from './state/suite.js';

for (const entry of STATE_MATRIX) stateConformance(entry);
