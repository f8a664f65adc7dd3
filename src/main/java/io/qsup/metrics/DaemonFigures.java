package io.qsup.metrics;

import java.util.function.IntSupplier;
import java.util.function.LongSupplier;

/**
 * The daemon-wide figures the metrics endpoint exports beside the VMs', each read at scrape time from a counter its
 * owner keeps; every supplier must answer at once, without locks or I/O.
 *
 * @param version            qsup's version
 * @param controlConnections control-socket clients connected now
 * @param eventsDropped      events never delivered because a subscriber stopped reading
 * @param hookRuns           hook runs started
 * @param hookFailures       hook runs that failed
 */
public record DaemonFigures(String version, IntSupplier controlConnections, LongSupplier eventsDropped,
                            LongSupplier hookRuns, LongSupplier hookFailures) {}
