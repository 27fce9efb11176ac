import { describeConvergenceShard } from './convergenceSuite.js';

describeConvergenceShard(0);
