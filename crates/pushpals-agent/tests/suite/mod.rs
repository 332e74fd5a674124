mod planner;
mod providers;
