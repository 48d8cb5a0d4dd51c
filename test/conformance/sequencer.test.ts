import { SEQUENCER_MATRIX } from './sequencer/matrix.js';
import { sequencerConformance } from './sequencer/suite.js';

for (const entry of SEQUENCER_MATRIX) sequencerConformance(entry);
