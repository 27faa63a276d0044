// The algorithms by configured name: the shell's dispatcher looks one up and calls the same
// four functions whatever it is. Adding an algorithm touches only this table and schema.ts.
import * as least_request from "./algorithms/least_request";
import * as peak_ewma from "./algorithms/peak_ewma";
import * as round_robin from "./algorithms/round_robin";
import { AlgorithmName } from "./schema";
import { Algorithm } from "./types";

const table = new LuaTable<AlgorithmName, Algorithm<any>>();
table.set("round_robin", round_robin as Algorithm<any>);
table.set("least_request", least_request as Algorithm<any>);
table.set("ewma", peak_ewma as Algorithm<any>);

export function algorithm(name: AlgorithmName): Algorithm<any> {
  return table.get(name);
}
