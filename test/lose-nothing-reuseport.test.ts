import t from 'tap';
import { scenarios } from './helpers/lose-nothing';

scenarios(t, 'reuseport');
