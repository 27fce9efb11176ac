// The WebSocket round trip: command → event over ws on loopback vs a raw ws echo (issue 3).
import '../packages/ws/bench/wsRoundTrip.js';
