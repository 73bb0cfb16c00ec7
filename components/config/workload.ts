import { z } from "zod";
import { expected, intIn, labels, strictObject } from "./fields";

/** Config that any tier's workload may carry: where it runs, how it is health-checked. */

/** Where a workload may run: every constraint given must hold for a Pi to be eligible. */
export const placementSchema = strictObject(
    {
        /** Pi labels that must all match. */
        labels: labels().optional(),
        /** Allowed Pi models. */
        models: z.array(z.enum(["pi4", "pi5"], expected("a Pi model: 'pi4' or 'pi5'"))).min(1, expected("at least one model")).optional(),
        /** Required storage, e.g. 'ssd' for databases. */
        storage: z.enum(["sd", "ssd"], expected("'sd' or 'ssd'")).optional(),
    },
    "placement",
);

/** Validated placement constraints. */
export type PlacementConstraints = z.output<typeof placementSchema>;

/** A container healthcheck. */
export const healthcheckSchema = strictObject(
    {
        /** Command run inside the container, exec form, e.g. ["wget", "-qO-", "http://localhost:8080/healthz"]. */
        command: z.array(z.string(), expected("a command as a list of strings")).min(1, expected("a non-empty command")),
        /** Seconds between checks; default 10. */
        intervalSeconds: intIn(1, 3600).default(10),
        /** Seconds before a check counts as failed; default 3. */
        timeoutSeconds: intIn(1, 600).default(3),
        /** Failures before the container is unhealthy; default 3. */
        retries: intIn(1, 100).default(3),
        /** Grace period after start, seconds; default 10. */
        startPeriodSeconds: intIn(0, 3600).default(10),
    },
    "a healthcheck",
);

/** Validated healthcheck. */
export type HealthcheckConfig = z.output<typeof healthcheckSchema>;
