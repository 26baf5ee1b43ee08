import t from 'tap';
import { scenarios } from './helpers/shutdown-accepted';

scenarios(t, 'single');
