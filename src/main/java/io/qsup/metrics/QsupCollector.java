package io.qsup.metrics;

import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.InfoSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.qsup.vm.VmStats;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Interprets {@link MetricFamilies#ALL} at each scrape: takes every VM's stats snapshot once, runs each family's
 * sampler over it and builds the Prometheus client's snapshots, which the client's exposition formats write.
 *
 * <p>Threading: called on the HTTP server's threads, any number at once. It takes no lock and makes no QMP call: the
 * VM figures come from {@code vms}, which must read volatile snapshots only (see {@code Supervisor.vmStats()}).
 */
public final class QsupCollector implements MultiCollector {
    private final Supplier<List<VmStats>> vms;
    private final DaemonFigures daemon;
    private final Clock clock;

    public QsupCollector(Supplier<List<VmStats>> vms, DaemonFigures daemon, Clock clock) {
        this.vms = vms;
        this.daemon = daemon;
        this.clock = clock;
    }

    @Override
    public MetricSnapshots collect() {
        MetricFamilies.Scrape scrape = new MetricFamilies.Scrape(vms.get(), daemon, clock.instant());
        List<MetricSnapshot> out = new ArrayList<>(MetricFamilies.ALL.size());
        for (MetricFamilies.Family f : MetricFamilies.ALL) {
            out.add(snapshot(f, scrape));
        }
        return new MetricSnapshots(out);
    }

    private static MetricSnapshot snapshot(MetricFamilies.Family f, MetricFamilies.Scrape scrape) {
        return switch (f.type()) {
            case GAUGE -> {
                GaugeSnapshot.Builder b = GaugeSnapshot.builder().name(f.name()).help(f.help());
                f.sampler().sample(scrape, values(f, (l, v) -> b.dataPoint(
                        GaugeSnapshot.GaugeDataPointSnapshot.builder().labels(l).value(v).build())));
                yield b.build();
            }
            case COUNTER -> {
                CounterSnapshot.Builder b = CounterSnapshot.builder().name(strip(f.name(), "_total")).help(f.help());
                f.sampler().sample(scrape, values(f, (l, v) -> b.dataPoint(
                        CounterSnapshot.CounterDataPointSnapshot.builder().labels(l).value(v).build())));
                yield b.build();
            }
            case INFO -> {
                InfoSnapshot.Builder b = InfoSnapshot.builder().name(strip(f.name(), "_info")).help(f.help());
                f.sampler().sample(scrape, values(f, (l, v) -> b.dataPoint(
                        InfoSnapshot.InfoDataPointSnapshot.builder().labels(l).build())));
                yield b.build();
            }
            case HISTOGRAM -> {
                HistogramSnapshot.Builder b = HistogramSnapshot.builder().name(f.name()).help(f.help());
                f.sampler().sample(scrape, new MetricFamilies.Points() {
                    @Override
                    public void add(double value, String... labelValues) {
                        throw new IllegalStateException(f.name() + " is a histogram; its sampler gave a single value");
                    }

                    @Override
                    public void add(VmStats.Durations h, String... labelValues) {
                        b.dataPoint(HistogramSnapshot.HistogramDataPointSnapshot.builder()
                                .labels(labels(f, labelValues))
                                .classicHistogramBuckets(ClassicHistogramBuckets.of(h.upperBounds(), h.counts()))
                                .sum(h.sum())
                                .build());
                    }
                });
                yield b.build();
            }
        };
    }

    /** Points for a single-valued family. */
    private static MetricFamilies.Points values(MetricFamilies.Family f, java.util.function.ObjDoubleConsumer<Labels> sink) {
        return new MetricFamilies.Points() {
            @Override
            public void add(double value, String... labelValues) {
                sink.accept(labels(f, labelValues), value);
            }

            @Override
            public void add(VmStats.Durations histogram, String... labelValues) {
                throw new IllegalStateException(f.name() + " is a " + f.type().word() + "; its sampler gave a histogram");
            }
        };
    }

    private static Labels labels(MetricFamilies.Family f, String[] values) {
        if (values.length != f.labels().size()) {
            throw new IllegalStateException(f.name() + " declares labels " + f.labels() + " but got " + values.length
                    + " values");
        }
        return values.length == 0 ? Labels.EMPTY : Labels.of(f.labels(), List.of(values));
    }

    private static String strip(String name, String suffix) {
        return name.endsWith(suffix) ? name.substring(0, name.length() - suffix.length()) : name;
    }
}
