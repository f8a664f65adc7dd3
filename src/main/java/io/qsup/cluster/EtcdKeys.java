package io.qsup.cluster;

import io.etcd.jetcd.ByteSequence;
import java.nio.charset.StandardCharsets;

/** The cluster's key layout in etcd, all under one versioned prefix; values are JSON. */
final class EtcdKeys {
    static final String PREFIX = "/qsup/v1/";
    static final String VMS = PREFIX + "vms/";
    static final String HOSTS = PREFIX + "hosts/";
    static final String ELECTION = PREFIX + "election";
    static final String PLACEMENT = PREFIX + "placement/";
    static final String RUNNING = PREFIX + "running/";
    static final String INTENT = PREFIX + "intent/";
    static final String STATUS = PREFIX + "status/";
    static final String MIGRATIONS = PREFIX + "migrations/";
    static final String DRAINED = PREFIX + "drained/";

    private EtcdKeys() {}

    static ByteSequence bytes(String s) {
        return ByteSequence.from(s, StandardCharsets.UTF_8);
    }

    static String vm(String name) {
        return VMS + name;
    }

    static String host(String name) {
        return HOSTS + name;
    }

    static String placement(String name) {
        return PLACEMENT + name;
    }

    static String running(String name) {
        return RUNNING + name;
    }

    static String intent(String name) {
        return INTENT + name;
    }

    static String status(String name) {
        return STATUS + name;
    }

    static String migration(String name) {
        return MIGRATIONS + name;
    }

    static String drained(String host) {
        return DRAINED + host;
    }
}
