import { describeConvergenceShard } from './convergenceSuite.js';

describeConvergenceShard(4);
