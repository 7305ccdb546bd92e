mod fakes;
mod fakes_selftest;
