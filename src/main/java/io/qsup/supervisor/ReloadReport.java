package io.qsup.supervisor;

import io.qsup.config.ConfigError;
import java.util.List;
import java.util.Map;

/**
 * What a reload did.
 *
 * @param added     VMs new in the definitions
 * @param removed   VMs whose definition went away (stopped with the ladder)
 * @param changed   VMs whose definition changed, with the changed keys
 * @param restarted changed VMs restarted at once ({@code apply-changes: restart})
 * @param kept      VMs whose file is broken: the old definition stays in force
 * @param errors    every error found, formatted file:line:column: key: message
 */
public record ReloadReport(List<String> added, List<String> removed, Map<String, List<String>> changed,
                           List<String> restarted, List<String> kept, List<ConfigError> errors) {}
